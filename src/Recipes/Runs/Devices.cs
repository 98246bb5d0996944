using Trainer.Data;
using static TorchSharp.torch;

namespace Trainer.Recipes.Runs;

public static class Devices
{
    /// <summary>
    /// auto picks CUDA when libtorch sees a GPU; cuda and cuda:N insist on one. A rank of a
    /// data-parallel job (<paramref name="localRank"/> among the ranks on its machine) takes GPU
    /// number localRank for auto and cuda.
    /// </summary>
    public static Device Select(string spec, int localRank = 0)
    {
        if (spec == "cpu") return CPU;
        if (spec == "auto") return cuda.is_available() ? Gpu(localRank) : CPU;
        if (!cuda.is_available())
            throw new BadInputException($"device '{spec}' was asked for, but libtorch sees no CUDA device (build with -p:TorchBackend=cuda on a machine with an NVIDIA GPU, or use --device cpu)");
        return spec == "cuda" ? Gpu(localRank) : new Device(spec);
    }

    static Device Gpu(int localRank) => localRank == 0 ? CUDA : new Device(TorchSharp.DeviceType.CUDA, localRank);
}
