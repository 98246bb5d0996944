using System.Runtime.InteropServices;

namespace Trainer.Models.Native;

/// <summary>
/// Keeps libtorch's CPU tensors in the C heap between training steps. libtorch allocates each
/// activation and gradient with malloc and frees it within the step; glibc serves blocks above
/// its mmap threshold (at most 32 MB) with fresh mmaps, so every step paid the kernel to map,
/// fault in and zero those pages again: ResNet-18 at batch 16 (51 MB activations) took about
/// 40,000 page faults a step. With mmap off for allocations and the heap never trimmed, freed
/// blocks are reused: faults fell from 760,000-870,000 to about 300,000 per benchmark (start-up
/// included) and training throughput rose from 14-17 to 24-26 images/s (docs/performance.md).
/// The cost: the process keeps its peak heap (as PyTorch's CUDA caching allocator does on a GPU).
/// Returning the free pages at each epoch's end (malloc_trim) was tried: the default run's RSS fell
/// from about 1.2 GB to 0.3 GB, but every epoch then faulted its pages in again and took 5.7 s
/// instead of 4.3 s, so the heap is kept. Linux with glibc only.
/// Since then the large tensor blocks (1 MB and up) have their own cache (<see cref="TensorBlockCache"/>),
/// because in the shared heap small allocations settled between them and the heap's size wandered
/// from run to run; this setting still keeps the smaller tensors and oneDNN's scratch memory from
/// being mapped afresh (ResNet-18 at batch 12: about 100 page faults a step with both, 770 with the
/// cache alone).
/// </summary>
internal static class NativeHeap
{
    const int MTrimThreshold = -1, MMmapMax = -4; // glibc's malloc.h

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int MallOpt(int parameter, int value);

    static bool _configured;

    /// <summary>True once glibc accepted both settings in this process.</summary>
    public static bool Retained { get; private set; }

    /// <summary>Setting it to 0 keeps glibc's defaults (memory returned as soon as it is freed, at the speed cost above).</summary>
    public const string OptOutVariable = "TRAINER_RETAIN_HEAP";

    /// <summary>Applies the settings once per process; affects allocations made after the call.</summary>
    public static void Configure()
    {
        if (_configured || !OperatingSystem.IsLinux()) return;
        _configured = true;
        if (Environment.GetEnvironmentVariable(OptOutVariable) == "0") return;
        try
        {
            Retained = MallOpt(MMmapMax, 0) == 1 && MallOpt(MTrimThreshold, int.MaxValue) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no mallopt): keep its defaults.
        }
    }

    /// <summary>
    /// Between epochs: collects the managed garbage and runs the finalizers, which frees the native
    /// memory of tensors whose managed handles were dropped without disposal (TorchSharp frees it
    /// only when they are finalised). Without it the default run's RSS rose 19% from epoch 2 to 10
    /// as such tensors waited for a collection; with it, 2% (docs/performance.md).
    /// </summary>
    public static void CollectGarbage()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }
}
