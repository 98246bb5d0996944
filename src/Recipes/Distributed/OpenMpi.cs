using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Trainer.Recipes.Distributed;

/// <summary>
/// The few MPI calls data-parallel training needs, straight from Open MPI's libmpi.so.40.
/// (NuGet's MPI.NET is built for Microsoft MPI's integer handles and crashes on Open MPI, whose
/// handles are the addresses of exported globals: ompi_mpi_comm_world, ompi_mpi_float, ...;
/// ../shared/notes/distributed.md.) Calls come one at a time (MPI_THREAD_SERIALIZED), from the
/// training thread or, on a GPU, from the autograd thread that runs SyncBatchNorm's backward while
/// the training thread waits in backward(); errors use MPI's default handler, which ends the job. Counts are C ints, so large buffers go in
/// chunks. MPI_IN_PLACE is the pointer value 1.
/// </summary>
internal sealed unsafe class OpenMpi : ICollective
{
    public const string Library = "libmpi.so.40";
    const int ThreadSerialized = 2;
    static readonly void* InPlace = (void*)1;
    const int MaxCount = int.MaxValue / 2;

    readonly IntPtr _world, _float, _double, _byte, _sumOp;
    readonly delegate* unmanaged<void*, void*, int, IntPtr, IntPtr, IntPtr, int> _allreduce;
    readonly delegate* unmanaged<void*, int, IntPtr, int, IntPtr, int> _bcast;
    readonly delegate* unmanaged<IntPtr, int, int> _abort;
    readonly delegate* unmanaged<int> _finalize;

    OpenMpi(IntPtr lib)
    {
        var initThread = (delegate* unmanaged<int*, void*, int, int*, int>)NativeLibrary.GetExport(lib, "MPI_Init_thread");
        var commRank = (delegate* unmanaged<IntPtr, int*, int>)NativeLibrary.GetExport(lib, "MPI_Comm_rank");
        var commSize = (delegate* unmanaged<IntPtr, int*, int>)NativeLibrary.GetExport(lib, "MPI_Comm_size");
        _allreduce = (delegate* unmanaged<void*, void*, int, IntPtr, IntPtr, IntPtr, int>)NativeLibrary.GetExport(lib, "MPI_Allreduce");
        _bcast = (delegate* unmanaged<void*, int, IntPtr, int, IntPtr, int>)NativeLibrary.GetExport(lib, "MPI_Bcast");
        _abort = (delegate* unmanaged<IntPtr, int, int>)NativeLibrary.GetExport(lib, "MPI_Abort");
        _finalize = (delegate* unmanaged<int>)NativeLibrary.GetExport(lib, "MPI_Finalize");
        _world = NativeLibrary.GetExport(lib, "ompi_mpi_comm_world");
        _float = NativeLibrary.GetExport(lib, "ompi_mpi_float");
        _double = NativeLibrary.GetExport(lib, "ompi_mpi_double");
        _byte = NativeLibrary.GetExport(lib, "ompi_mpi_byte");
        _sumOp = NativeLibrary.GetExport(lib, "ompi_mpi_op_sum");
        int provided, rank, size;
        Check(initThread(null, null, ThreadSerialized, &provided), "MPI_Init_thread");
        if (provided < ThreadSerialized)
            throw new InvalidOperationException($"this Open MPI offers thread level {provided}, below MPI_THREAD_SERIALIZED (2) that Trainer needs; use Open MPI 4 or later as Debian ships it");
        Check(commRank(_world, &rank), "MPI_Comm_rank");
        Check(commSize(_world, &size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
        LocalRank = EnvInt("OMPI_COMM_WORLD_LOCAL_RANK", 0);
        LocalSize = EnvInt("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
    }

    /// <summary>Initialises MPI in this process; <paramref name="problem"/> says why not when Open MPI's library cannot be loaded.</summary>
    public static OpenMpi? Start(out string? problem)
    {
        if (!NativeLibrary.TryLoad(Library, out var lib))
        {
            problem = $"{Library} (Open MPI) is not installed: apt-get install -y openmpi-bin";
            return null;
        }
        problem = null;
        return new OpenMpi(lib);
    }

    public int Rank { get; }
    public int Size { get; }
    public int LocalRank { get; }
    public int LocalSize { get; }

    public void SumInPlace(Tensor t)
    {
        if (t.device.type != TorchSharp.DeviceType.CPU || !t.is_contiguous())
            throw new ArgumentException("MPI reduces contiguous CPU tensors only");
        var type = t.dtype switch
        {
            ScalarType.Float32 => _float,
            ScalarType.Float64 => _double,
            _ => throw new ArgumentException($"MPI sums float32 and float64 tensors here, not {t.dtype}"),
        };
        int elementSize = t.dtype == ScalarType.Float32 ? 4 : 8;
        fixed (byte* p = t.bytes)
            for (long done = 0, n = t.numel(); done < n; done += MaxCount)
            {
                int count = (int)Math.Min(MaxCount, n - done);
                Check(_allreduce(InPlace, p + done * elementSize, count, type, _sumOp, _world), "MPI_Allreduce");
            }
    }

    public void SumInPlace(Span<double> values)
    {
        fixed (double* p = values)
            Check(_allreduce(InPlace, p, values.Length, _double, _sumOp, _world), "MPI_Allreduce");
    }

    public void Broadcast(Tensor t, int root = 0)
    {
        if (t.device.type != TorchSharp.DeviceType.CPU || !t.is_contiguous())
            throw new ArgumentException("MPI broadcasts contiguous CPU tensors only");
        // Sent as bytes: any dtype travels unchanged.
        fixed (byte* p = t.bytes)
            for (long done = 0, n = t.numel() * t.ElementSize; done < n; done += MaxCount)
            {
                int count = (int)Math.Min(MaxCount, n - done);
                Check(_bcast(p + done, count, _byte, root, _world), "MPI_Bcast");
            }
    }

    public void Abort(int exitCode) => _abort(_world, exitCode);

    /// <summary>Ends MPI in this process (after the last collective of a run that ended well).</summary>
    public void Finish() => _finalize();

    static void Check(int code, string call)
    {
        if (code != 0) throw new InvalidOperationException($"{call} failed with MPI error {code}");
    }

    static int EnvInt(string name, int fallback) => int.TryParse(Environment.GetEnvironmentVariable(name), out var v) ? v : fallback;
}
