using TorchSharp.Modules;
using Trainer.Models.Onnx;
using Trainer.Models.Layers;
using static TorchSharp.torch;

namespace Trainer.Models.Families;

/// <summary>
/// MobileNetV2 (Sandler et al. 2018) as torchvision builds it: a stride-2 stem, inverted residual
/// blocks (1x1 expand by t, 3x3 depthwise, linear 1x1 projection; a shortcut when stride 1 and the
/// shapes match), a 1x1 conv to 1280 channels, dropout 0.2 and a linear classifier. The width
/// multiplier scales every layer (rounded to multiples of 8). The CIFAR form keeps the stem and the
/// first stride-2 stage at stride 1 (32x32 inputs end at 4x4).
/// </summary>
internal sealed class MobileNetV2 : ClassifierModel
{
    static readonly (int T, int C, int N, int S)[] Settings =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

    readonly Sequential features, classifier;

    public MobileNetV2(int numClasses = 1000, double width = 1.0, bool cifar = false, double dropout = 0.2) : base(nameof(MobileNetV2))
    {
        long channels = ConvNormActivation.MakeDivisible(32 * width);
        long last = ConvNormActivation.MakeDivisible(1280 * Math.Max(1.0, width));
        features = nn.Sequential(("0", ConvNormActivation.Create(3, channels, stride: cifar ? 1 : 2, activation: Activation.ReLU6)));
        int index = 1;
        for (int stage = 0; stage < Settings.Length; stage++)
        {
            var (t, c, n, s) = Settings[stage];
            long output = ConvNormActivation.MakeDivisible(c * width);
            long stride = cifar && stage == 1 ? 1 : s;
            for (int i = 0; i < n; i++)
            {
                features.append((index++).ToString(), new InvertedResidual(channels, output, i == 0 ? stride : 1, t));
                channels = output;
            }
        }
        features.append((index++).ToString(), ConvNormActivation.Create(channels, last, kernel: 1, activation: Activation.ReLU6));
        classifier = nn.Sequential(("0", nn.Dropout(dropout)), ("1", nn.Linear(last, numClasses)));
        RegisterComponents();
        // torchvision's MobileNet initialisation: Kaiming-normal (fan_out) convolutions, N(0, 0.01) linear weights, zero biases.
        WeightInit.Apply(this, WeightInit.KaimingFanOut, WeightInit.Normal001, zeroLinearBias: true);
    }

    public override Linear Head => (Linear)classifier[1];

    public override IReadOnlyList<nn.Module[]> Stages => [[features], [classifier]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.adaptive_avg_pool2d(features.call(x), 1).flatten(1);
        return ((nn.Module<Tensor, Tensor>)classifier[0]).call(y).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x) => g.Flatten(g.GlobalAveragePool(g.Module(features, x)));
}

/// <summary>MobileNetV2's block: expand (1x1), depthwise (3x3), project (1x1, no activation); shortcut when shapes allow.</summary>
internal sealed class InvertedResidual : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly Sequential conv;
    readonly bool residual;

    public InvertedResidual(long inChannels, long outChannels, long stride, int expandRatio) : base(nameof(InvertedResidual))
    {
        long hidden = (long)Math.Round(inChannels * (double)expandRatio);
        residual = stride == 1 && inChannels == outChannels;
        conv = nn.Sequential();
        int i = 0;
        if (expandRatio != 1) conv.append((i++).ToString(), ConvNormActivation.Create(inChannels, hidden, kernel: 1, activation: Activation.ReLU6));
        conv.append((i++).ToString(), ConvNormActivation.Create(hidden, hidden, stride: stride, groups: hidden, activation: Activation.ReLU6));
        conv.append((i++).ToString(), nn.Conv2d(hidden, outChannels, kernel_size: 1, bias: false));
        conv.append((i++).ToString(), nn.BatchNorm2d(outChannels));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => residual ? x + conv.call(x) : conv.call(x);

    public string EmitOnnx(OnnxGraphBuilder g, string x) => residual ? g.Add(x, g.Module(conv, x)) : g.Module(conv, x);
}

/// <summary>
/// MobileNetV1 (Howard et al. 2017): a 3x3 stride-2 stem and 13 depthwise separable layers
/// (3x3 depthwise + 1x1 pointwise, each with BatchNorm and ReLU), global average pooling and a
/// linear classifier. The width multiplier alpha scales every layer; any input resolution works
/// (the resolution multiplier is just the input size). The CIFAR form starts at stride 1.
/// </summary>
internal sealed class MobileNetV1 : ClassifierModel
{
    static readonly (int Channels, int Stride)[] Layers =
        [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];

    readonly Sequential features;
    readonly Linear fc;

    public MobileNetV1(int numClasses = 1000, double width = 1.0, bool cifar = false) : base(nameof(MobileNetV1))
    {
        long channels = (long)(32 * width);
        features = nn.Sequential(("0", ConvNormActivation.Create(3, channels, stride: cifar ? 1 : 2)));
        int index = 1;
        foreach (var (c, s) in Layers)
        {
            long output = (long)(c * width);
            features.append((index++).ToString(), nn.Sequential(
                ("0", ConvNormActivation.Create(channels, channels, stride: s, groups: channels)),
                ("1", ConvNormActivation.Create(channels, output, kernel: 1))));
            channels = output;
        }
        fc = nn.Linear(channels, numClasses);
        RegisterComponents();
        // torchvision's MobileNet initialisation: Kaiming-normal (fan_out) convolutions, N(0, 0.01) linear weights, zero biases.
        WeightInit.Apply(this, WeightInit.KaimingFanOut, WeightInit.Normal001, zeroLinearBias: true);
    }

    public override Linear Head => fc;

    public override IReadOnlyList<nn.Module[]> Stages => [[features]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        return nn.functional.adaptive_avg_pool2d(features.call(x), 1).flatten(1).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x) => g.Flatten(g.GlobalAveragePool(g.Module(features, x)));
}
