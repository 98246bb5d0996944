using TorchSharp.Modules;
using Trainer.Models.Onnx;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>
/// Squeeze-and-excitation (Hu et al. 2018): global average pool, a 1x1 convolution down to
/// <c>squeezeChannels</c>, an activation, a 1x1 convolution back, a sigmoid, and a channel-wise
/// scale of the input. The two 1x1 convolutions carry biases and are named fc1 and fc2, as in
/// torchvision's SqueezeExcitation (EfficientNet); SE-ResNet uses reduction 16 and ReLU.
/// </summary>
internal sealed class SqueezeExcitation : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly AdaptiveAvgPool2d avgpool;
    readonly Conv2d fc1, fc2;
    readonly nn.Module<Tensor, Tensor> activation;

    public SqueezeExcitation(long channels, long squeezeChannels, Activation activation = Activation.ReLU) : base(nameof(SqueezeExcitation))
    {
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc1 = nn.Conv2d(channels, squeezeChannels, kernel_size: 1);
        fc2 = nn.Conv2d(squeezeChannels, channels, kernel_size: 1);
        this.activation = ConvNormActivation.Act(activation);
        RegisterComponents();
    }

    /// <summary>The SE paper's block for <paramref name="channels"/> channels: reduction 16, ReLU.</summary>
    public static SqueezeExcitation ForResidual(long channels) => new(channels, Math.Max(1, channels / 16));

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var scale = fc2.call(activation.call(fc1.call(avgpool.call(x))));
        return (x * scale.sigmoid()).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var scale = g.Module(fc2, g.Module(activation, g.Module(fc1, g.Module(avgpool, x))));
        return g.Mul(x, g.Node("Sigmoid", [scale]));
    }
}
