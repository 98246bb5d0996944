using System.Runtime.CompilerServices;
using Xunit;

namespace Trainer.Tests;

static class TestSetup
{
    /// <summary>Set to 1 to run the CUDA tests (and only those: scripts/gpu-check.sh filters on the Device trait).</summary>
    public const string CudaVariable = "TRAINER_TEST_CUDA";

    public static bool CudaRun => Environment.GetEnvironmentVariable(CudaVariable) == "1";

    /// <summary>
    /// Before any test touches a tensor: the native settings the trainer command applies (see
    /// NativeRuntime). And every test runs on the CPU unless it is a CUDA test: the GPUs are
    /// hidden from libtorch (CUDA_VISIBLE_DEVICES=-1, no valid device, in this process's native
    /// environment and in its children's), so `device: auto`, the default, means the CPU here on
    /// any machine. (.NET keeps its own copy of the environment on Unix: libc's is set too.)
    /// </summary>
    [ModuleInitializer]
    internal static void Initialize()
    {
        if (!CudaRun)
        {
            Trainer.Models.Native.NativeEnvironment.Set("CUDA_VISIBLE_DEVICES", "-1");
            Environment.SetEnvironmentVariable("CUDA_VISIBLE_DEVICES", "-1");
        }
        Trainer.Models.Native.NativeRuntime.Configure();
    }
}

/// <summary>
/// A test that needs a CUDA GPU and the CUDA build: it runs with TRAINER_TEST_CUDA=1
/// (scripts/gpu-check.sh) and is otherwise skipped; scripts/test.sh leaves these tests out of
/// the default run altogether (trait Device=cuda), so its totals count only tests that ran.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (!TestSetup.CudaRun) Skip = $"a CUDA test: runs with {TestSetup.CudaVariable}=1 on a CUDA build (scripts/gpu-check.sh)";
    }
}
