using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>
/// Weight initialisation written once for every family: BatchNorm scale 1 and shift 0, conv
/// biases 0, and the family's own rule for convolution and linear weights.
/// </summary>
internal static class WeightInit
{
    /// <summary>Kaiming-normal with fan_out and the ReLU gain: He et al. (2015) as torchvision applies it.</summary>
    public static void KaimingFanOut(Tensor w) => nn.init.kaiming_normal_(w, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);

    /// <summary>N(0, 0.01), torchvision's rule for VGG, MobileNet and GoogLeNet linear layers.</summary>
    public static void Normal001(Tensor w) => nn.init.normal_(w, 0, 0.01);

    /// <summary>Glorot (Xavier) uniform: TF-slim's default for its convolutions and fully connected layers (Inception-v4, Inception-ResNet-v2).</summary>
    public static void GlorotUniform(Tensor w) => nn.init.xavier_uniform_(w);

    /// <param name="model">every module under it is initialised.</param>
    /// <param name="conv">applied to every convolution weight</param>
    /// <param name="linear">applied to every linear weight; null keeps PyTorch's default</param>
    /// <param name="zeroLinearBias">set linear biases to 0</param>
    public static void Apply(nn.Module model, Action<Tensor> conv, Action<Tensor>? linear = null, bool zeroLinearBias = false)
    {
        using var _ = no_grad();
        foreach (var (_, m) in model.named_modules())
        {
            switch (m)
            {
                case Conv2d c:
                    conv(c.weight!);
                    if (c.bias is not null) nn.init.zeros_(c.bias);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
                case Linear l:
                    linear?.Invoke(l.weight!);
                    if (zeroLinearBias && l.bias is not null) nn.init.zeros_(l.bias);
                    break;
            }
        }
    }
}

/// <summary>He et al. (2015) initialisation as torchvision's ResNets apply it; linear layers keep PyTorch's default.</summary>
internal static class HeInit
{
    public static void Apply(nn.Module module) => WeightInit.Apply(module, WeightInit.KaimingFanOut);
}
