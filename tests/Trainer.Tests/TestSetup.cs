using System.Runtime.CompilerServices;

namespace Trainer.Tests;

static class TestSetup
{
    /// <summary>Before any test touches a convolution: the oneDNN guard the trainer command applies (see CpuKernels).</summary>
    [ModuleInitializer]
    internal static void Initialize() => Trainer.Models.Native.CpuKernels.Configure();
}
