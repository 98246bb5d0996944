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
        if (spec == "cuda") return Gpu(localRank);
        var device = new Device(spec);
        if (device.type == TorchSharp.DeviceType.CUDA && device.index >= cuda.device_count())
            throw new BadInputException($"device '{spec}' was asked for, but libtorch sees {Present()}");
        return device;
    }

    /// <summary>GPU number <paramref name="localRank"/>: one GPU per rank on a machine.</summary>
    static Device Gpu(int localRank)
    {
        if (localRank >= cuda.device_count())
            throw new BadInputException($"rank {localRank} of this machine needs GPU cuda:{localRank}, but libtorch sees {Present()}; start at most that many ranks a machine");
        return localRank == 0 ? CUDA : new Device(TorchSharp.DeviceType.CUDA, localRank);
    }

    static string Present()
    {
        int count = cuda.device_count();
        return count == 1 ? "one CUDA device (cuda:0)" : $"{count} CUDA devices (cuda:0 to cuda:{count - 1})";
    }
}
