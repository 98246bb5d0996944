namespace Trainer.Models.Native;

/// <summary>The native settings every process of this tool applies before its first tensor (the trainer command and the tests).</summary>
public static class NativeRuntime
{
    public static void Configure()
    {
        NativeHeap.Configure();
        TensorBlockCache.Configure();
        CpuKernels.Configure();
    }
}
