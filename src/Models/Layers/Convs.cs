using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>Convolution shorthands used by every family (bias-free, as BatchNorm follows them).</summary>
internal static class Convs
{
    public static Conv2d Conv3x3(long inChannels, long outChannels, long stride = 1) =>
        nn.Conv2d(inChannels, outChannels, kernel_size: 3, stride: stride, padding: 1, bias: false);

    public static Conv2d Conv1x1(long inChannels, long outChannels, long stride = 1) =>
        nn.Conv2d(inChannels, outChannels, kernel_size: 1, stride: stride, bias: false);
}
