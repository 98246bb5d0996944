using Trainer.Models.Native;
using Trainer.Data.Loading;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>
/// What makes a run repeat itself on a GPU. TorchSharp's manual_seed seeds the CPU generator
/// only, and TorchSharp 0.107 can neither read nor restore the CUDA generator's state; dropout and
/// stochastic depth on a GPU draw from that generator. So before every training step the CUDA
/// generators are seeded from (seed, step): the masks then depend on the run's seed and the step
/// alone, a resumed run (or a rollback after bad numbers) draws what the uninterrupted run drew,
/// and a checkpoint needs no CUDA state. On the CPU nothing changes (its generator's state is in
/// the checkpoint). What stays nondeterministic on a GPU unless <c>deterministic: true</c>: cuDNN's
/// choice of convolution algorithms and the kernels that add with atomics (backward of some
/// pooling, scatter and index operations); see <see cref="Apply"/>.
/// </summary>
internal static class Determinism
{
    /// <summary>Seeds every CUDA generator for the step about to run (nothing on the CPU).</summary>
    public static void SeedStep(Device device, long seed, long step)
    {
        if (device.type != TorchSharp.DeviceType.CUDA) return;
        cuda.manual_seed_all(StepSeed(seed, step));
    }

    /// <summary>The CUDA seed of a step: a 63-bit mix of the run's seed and the step number.</summary>
    public static long StepSeed(long seed, long step) => (long)(new Rng((ulong)seed, (ulong)step, 0xC0DA).NextUInt64() >> 1);

    /// <summary>Whether libtorch's deterministic algorithms are on in this process.</summary>
    public static bool On => LibTorchContext.DeterministicAlgorithmsEnabled;

    /// <summary>
    /// <c>deterministic: true</c>: what torch.use_deterministic_algorithms(True) and
    /// torch.backends.cudnn.deterministic = True, benchmark = False do in PyTorch, set on libtorch's
    /// global context directly (<see cref="LibTorchContext"/>): deterministic cuDNN convolutions, and an error naming any operation
    /// that has no deterministic kernel. cuBLAS needs CUBLAS_WORKSPACE_CONFIG=:4096:8 set before its
    /// first use, which is done here (in the native environment) unless the user set it. Slower on
    /// a GPU; on the CPU the kernels used here are deterministic already.
    /// </summary>
    public static void Apply(bool deterministic)
    {
        if (deterministic && Environment.GetEnvironmentVariable("CUBLAS_WORKSPACE_CONFIG") is null && OperatingSystem.IsLinux())
            NativeEnvironment.Set("CUBLAS_WORKSPACE_CONFIG", ":4096:8", overwrite: false);
        // Both ways: a process that runs several trainings (the library, the tests) gets what each asks for.
        LibTorchContext.DeterministicAlgorithmsEnabled = deterministic;
        LibTorchContext.CuDnnDeterministic = deterministic;
        LibTorchContext.CuDnnBenchmark = false;
    }
}
