using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>Which activation follows a convolution and its BatchNorm.</summary>
internal enum Activation { None, ReLU, ReLU6, SiLU }

/// <summary>
/// Convolution, BatchNorm, activation, as torchvision's Conv2dNormActivation: a Sequential whose
/// children are "0" (conv, no bias, "same" padding), "1" (BatchNorm) and "2" (the activation), so
/// state_dict keys read features.0.0.weight, features.0.1.running_mean as torchvision's do.
/// </summary>
internal static class ConvNormActivation
{
    public static Sequential Create(long inChannels, long outChannels, long kernel = 3, long stride = 1, long groups = 1, Activation activation = Activation.ReLU, double bnEps = 1e-5, double bnMomentum = 0.1)
    {
        var block = nn.Sequential(
            ("0", nn.Conv2d(inChannels, outChannels, kernel_size: kernel, stride: stride, padding: (kernel - 1) / 2, groups: groups, bias: false)),
            ("1", nn.BatchNorm2d(outChannels, eps: bnEps, momentum: bnMomentum)));
        if (activation != Activation.None) block.append("2", Act(activation));
        return block;
    }

    public static nn.Module<Tensor, Tensor> Act(Activation activation) => activation switch
    {
        Activation.ReLU => nn.ReLU(inplace: true),
        Activation.ReLU6 => nn.ReLU6(inplace: true),
        Activation.SiLU => nn.SiLU(inplace: true),
        _ => nn.Identity(),
    };

    /// <summary>
    /// Rounds a channel count to a multiple of <paramref name="divisor"/>, never below it and never
    /// more than 10% under the value (the MobileNet/EfficientNet rule).
    /// </summary>
    public static long MakeDivisible(double value, long divisor = 8)
    {
        long rounded = Math.Max(divisor, (long)(value + divisor / 2.0) / divisor * divisor);
        return rounded < 0.9 * value ? rounded + divisor : rounded;
    }
}
