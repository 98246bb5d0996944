using System.Runtime.InteropServices;

namespace Trainer.Models.Native;

/// <summary>
/// libtorch's CPU allocator, replaced by one that keeps large tensor blocks for reuse, as PyTorch's
/// CUDA caching allocator does on a GPU. libtorch takes every CPU tensor's memory from glibc's
/// malloc. With glibc's defaults each large block is a fresh mmap (page faults every step); with
/// the heap kept (<see cref="NativeHeap"/>) the blocks are reused but share the heap with the
/// small allocations of everything else in the process, which settle between them: the default
/// run's heap grew to about 950 MB for about 400 MB of live tensors, and reached its plateau at a
/// different epoch in each run (RSS at epoch 10 between 0.6% and 13.6% above epoch 2).
/// Here a block of at least <see cref="LargeBytes"/> gets its own mapping; when its tensor is freed
/// the mapping waits in a free list and serves the next request of its size, or of a size down to
/// half of it (a short last batch uses the full batches' blocks). The same step then reuses the
/// same blocks, the plateau is reached in the first epoch, and the heap keeps only small things.
/// Smaller blocks still come from malloc, aligned to 64 bytes as libtorch's own allocator does.
/// The allocator is a C++ object built here: a vtable of c10::Allocator's six virtual functions
/// (layout read from libc10.so 2.10: destructor, deleting destructor, allocate, is_simple_data_ptr,
/// raw_deleter, copy_data) pointing at the static methods below, installed with
/// c10::SetCPUAllocator. Tensors allocated before keep their own deleters.
/// Linux only; <c>TRAINER_TENSOR_CACHE=0</c> keeps libtorch's allocator.
/// </summary>
internal static unsafe class TensorBlockCache
{
    /// <summary>Blocks from this size on are mapped and cached; smaller ones come from malloc.</summary>
    public const long LargeBytes = 1 << 20;

    /// <summary>Setting it to 0 keeps libtorch's own allocator.</summary>
    public const string OptOutVariable = "TRAINER_TENSOR_CACHE";

    const int Alignment = 64, ProtReadWrite = 3, MapPrivateAnonymous = 0x22;

    /// <summary>c10::DataPtr as libc10 2.10 lays it out (32 bytes; see DefaultCPUAllocator::allocate).</summary>
    [StructLayout(LayoutKind.Sequential)]
    struct DataPtr
    {
        public nint Data, Deleter, Context;
        public short Device;   // DeviceType CPU (0), index -1: 0xff00
    }

    [DllImport("c10", EntryPoint = "_ZN3c1015SetCPUAllocatorEPNS_9AllocatorEh")]
    static extern void SetCpuAllocator(nint allocator, byte priority);

    [DllImport("c10", EntryPoint = "_ZN3c1022GetDefaultCPUAllocatorEv")]
    static extern nint GetDefaultCpuAllocator();

    [DllImport("libc", EntryPoint = "posix_memalign")]
    static extern int PosixMemalign(out nint pointer, nuint alignment, nuint size);

    [DllImport("libc", EntryPoint = "mmap")]
    static extern nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "_exit")]
    static extern void ExitNow(int status);

    [DllImport("libc", EntryPoint = "munmap")]
    static extern int Munmap(nint address, nuint length);

    static readonly object Gate = new();
    // Every mapped block (live or free) and its mapped length.
    static readonly Dictionary<nint, long> Mapped = new();
    // Free mapped blocks by length (a sorted list: looked up by index, without allocating, on every large request).
    static readonly SortedList<long, Stack<nint>> Free = new();
    static nint _object, _libcFree;
    static long _freeBytes, _mappedBytes;
    static bool _configured;

    /// <summary>True once this process's CPU tensors come from this allocator.</summary>
    public static bool Installed { get; private set; }

    /// <summary>Bytes mapped for large blocks, in use or waiting in the cache.</summary>
    public static long MappedBytes { get { lock (Gate) return _mappedBytes; } }

    /// <summary>Bytes of large blocks waiting in the cache.</summary>
    public static long CachedBytes { get { lock (Gate) return _freeBytes; } }

    /// <summary>Installs the allocator once per process (before the first tensor, ideally).</summary>
    public static void Configure()
    {
        if (_configured || !OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        _configured = true;
        if (Environment.GetEnvironmentVariable(OptOutVariable) == "0") return;
        try
        {
            _libcFree = NativeLibrary.GetExport(NativeLibrary.Load("libc.so.6"), "free");
            var defaultVtable = *(nint**)GetDefaultCpuAllocator();
            // Slots -2 and -1 (offset to top, type info) copied from libtorch's allocator, then the six functions.
            var table = (nint*)NativeMemory.Alloc(8, (nuint)sizeof(nint));
            table[0] = defaultVtable[-2];
            table[1] = defaultVtable[-1];
            table[2] = (nint)(delegate* unmanaged<nint, void>)&Destroy;
            table[3] = (nint)(delegate* unmanaged<nint, void>)&Destroy;
            table[4] = (nint)(delegate* unmanaged<DataPtr*, nint, nuint, DataPtr*>)&Allocate;
            table[5] = (nint)(delegate* unmanaged<nint, DataPtr*, byte>)&IsSimpleDataPtr;
            table[6] = (nint)(delegate* unmanaged<nint, nint>)&RawDeleter;
            table[7] = (nint)(delegate* unmanaged<nint, nint, nint, nuint, void>)&CopyData;
            _object = (nint)NativeMemory.Alloc(2, (nuint)sizeof(nint));
            ((nint*)_object)[0] = (nint)(table + 2);
            ((nint*)_object)[1] = 0;
            SetCpuAllocator(_object, 1);
            Installed = true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Another libtorch build or platform: keep its allocator.
        }
    }

    /// <summary>Unmaps every cached block (the blocks in use stay); returns the bytes released.</summary>
    public static long Trim()
    {
        lock (Gate) return ReleaseFree(long.MaxValue);
    }

    // The allocator lives as long as the process: nothing to destroy.
    [UnmanagedCallersOnly]
    static void Destroy(nint self) { }

    [UnmanagedCallersOnly]
    static DataPtr* Allocate(DataPtr* result, nint self, nuint bytes)
    {
        nint data = 0, deleter = _libcFree;
        if (bytes >= LargeBytes)
        {
            data = TakeLarge((long)bytes);
            if (data != 0) deleter = (nint)(delegate* unmanaged<nint, void>)&Release;
        }
        if (data == 0 && bytes > 0 && PosixMemalign(out data, Alignment, bytes) != 0)
        {
            // No C++ exception can be thrown from here (as libtorch's allocator would): say why and stop.
            Console.Error.WriteLine($"error: out of memory: libtorch asked for {bytes:N0} bytes of CPU memory (a smaller batch size needs less)");
            ExitNow(1);
        }
        *result = new DataPtr { Data = data, Deleter = deleter, Context = data, Device = unchecked((short)0xff00) };
        return result;
    }

    [UnmanagedCallersOnly]
    static byte IsSimpleDataPtr(nint self, DataPtr* pointer) => pointer->Data == pointer->Context ? (byte)1 : (byte)0;

    // raw_allocate/raw_deallocate pair through this one deleter, which tells the two kinds apart.
    [UnmanagedCallersOnly]
    static nint RawDeleter(nint self) => (nint)(delegate* unmanaged<nint, void>)&Release;

    [UnmanagedCallersOnly]
    static void CopyData(nint self, nint destination, nint source, nuint count) =>
        Buffer.MemoryCopy((void*)source, (void*)destination, count, count);

    /// <summary>A block's deleter: a mapped block goes back to the cache, any other to free().</summary>
    [UnmanagedCallersOnly]
    static void Release(nint data)
    {
        if (data == 0) return;
        lock (Gate)
        {
            if (Mapped.TryGetValue(data, out long length))
            {
                if (!Free.TryGetValue(length, out var stack)) Free[length] = stack = new Stack<nint>();
                stack.Push(data);
                _freeBytes += length;
                return;
            }
        }
        ((delegate* unmanaged<nint, void>)_libcFree)(data);
    }

    /// <summary>A cached block of <paramref name="bytes"/> to twice that, the smallest; else a new mapping.</summary>
    static nint TakeLarge(long bytes)
    {
        long length = (bytes + 4095) & ~4095L;
        lock (Gate)
        {
            for (int i = 0; i < Free.Count; i++)
            {
                long size = Free.Keys[i];
                var stack = Free.Values[i];
                if (size < length || stack.Count == 0) continue;
                if (size > 2 * length) break;
                _freeBytes -= size;
                return stack.Pop();
            }
            // A miss while the cache holds more than the tensors in use (the shapes changed, as
            // from training to evaluation): give back as much as is asked for, largest blocks
            // first, so the cache cannot keep growing. A steady training step never misses.
            if (_freeBytes > _mappedBytes - _freeBytes) ReleaseFree(length);
            nint block = Mmap(0, (nuint)length, ProtReadWrite, MapPrivateAnonymous, -1, 0);
            if (block == -1)
            {
                ReleaseFree(long.MaxValue);
                block = Mmap(0, (nuint)length, ProtReadWrite, MapPrivateAnonymous, -1, 0);
                if (block == -1) return 0;
            }
            Mapped[block] = length;
            _mappedBytes += length;
            return block;
        }
    }

    /// <summary>Unmaps free blocks, largest first, until at least <paramref name="wanted"/> bytes are released.</summary>
    static long ReleaseFree(long wanted)
    {
        long released = 0;
        foreach (var size in Free.Keys.Reverse().ToArray())
        {
            var stack = Free[size];
            while (stack.Count > 0 && released < wanted)
            {
                var block = stack.Pop();
                Munmap(block, (nuint)size);
                Mapped.Remove(block);
                _mappedBytes -= size;
                _freeBytes -= size;
                released += size;
            }
            if (stack.Count == 0) Free.Remove(size);
            if (released >= wanted) break;
        }
        return released;
    }
}
