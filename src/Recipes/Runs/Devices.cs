using Trainer.Data;
using static TorchSharp.torch;

namespace Trainer.Recipes.Runs;

public static class Devices
{
    /// <summary>auto picks CUDA when libtorch sees a GPU; cuda and cuda:N insist on one.</summary>
    public static Device Select(string spec)
    {
        if (spec == "cpu") return CPU;
        if (spec == "auto") return cuda.is_available() ? CUDA : CPU;
        if (!cuda.is_available())
            throw new BadInputException($"device '{spec}' was asked for, but libtorch sees no CUDA device (build with -p:TorchBackend=cuda on a machine with an NVIDIA GPU, or use --device cpu)");
        return new Device(spec);
    }
}
