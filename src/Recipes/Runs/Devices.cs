using System.Text.RegularExpressions;
using Trainer.Data;
using Trainer.Models.Native;
using static TorchSharp.torch;

namespace Trainer.Recipes.Runs;

public static partial class Devices
{
    [GeneratedRegex(@"^(auto|cpu|cuda|cuda:\d+)$")]
    private static partial Regex Name();

    /// <summary>True for the names a device may have: auto, cpu, cuda, cuda:N.</summary>
    public static bool IsName(string spec) => Name().IsMatch(spec);

    /// <summary>
    /// auto picks CUDA when libtorch sees a GPU; cuda and cuda:N insist on one. A rank of a
    /// data-parallel job (<paramref name="localRank"/> among the ranks on its machine) takes GPU
    /// number localRank for auto and cuda. A CUDA build that sees no GPU says why (on stderr for
    /// auto, which then uses the CPU; as bad input for cuda).
    /// </summary>
    public static Device Select(string spec, int localRank = 0)
    {
        if (!IsName(spec)) throw new BadInputException($"device must be auto, cpu, cuda or cuda:N, got '{spec}'");
        if (spec == "cpu") return CPU;
        if (spec == "auto")
        {
            if (cuda.is_available()) return Gpu(localRank);
            if (NativeRuntime.TorchBackend == "cuda") Console.Error.WriteLine($"warning: this is a CUDA build, but {WhyNoCuda()}: training on the CPU");
            return CPU;
        }
        if (!cuda.is_available()) throw new BadInputException($"device '{spec}' was asked for, but {WhyNoCuda()}");
        if (spec == "cuda") return Gpu(localRank);
        var device = new Device(spec);
        if (device.index >= cuda.device_count())
            throw new BadInputException($"device '{spec}' was asked for, but libtorch sees {Present()}");
        return device;
    }

    /// <summary>Why libtorch sees no CUDA device: a CPU build, or what the NVIDIA driver says.</summary>
    public static string WhyNoCuda() => NativeRuntime.TorchBackend != "cuda"
        ? "this trainer was built with the CPU libtorch (build the CUDA one: TRAINER_BACKEND=cuda ./trainer ..., or dotnet build -p:TorchBackend=cuda), or use --device cpu"
        : CudaDriver.WhyNoDevice() ?? "libtorch sees no CUDA device although the driver reports one (check CUDA_VISIBLE_DEVICES)";

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
