using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// MnasNet (Tan et al. 2019) in torchvision's form, the B1 variant (no squeeze-and-excitation):
/// a 3x3 stride-2 stem, a depthwise separable layer, six stacks of inverted residual blocks
/// (3x3 and 5x5 depthwise, expansion 3 or 6), a 1x1 conv to 1280 channels, dropout 0.2 and a
/// linear classifier. The depth multiplier alpha scales the channels (rounded to multiples of 8).
/// State_dict keys equal torchvision's (layers.N, classifier.1).
/// </summary>
internal sealed class MnasNet : ClassifierModel
{
    // torchvision's momentum 1 - 0.9997 (TensorFlow's decay 0.9997 in PyTorch's convention).
    const double BnMomentum = 1 - 0.9997;
    static readonly int[] Depths = [32, 16, 24, 40, 80, 96, 192, 320];
    static readonly (int Kernel, int Stride, int Expansion, int Repeats)[] Stacks =
        [(3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1)];

    readonly Sequential layers, classifier;

    public MnasNet(int numClasses = 1000, double alpha = 1.0, double dropout = 0.2) : base(nameof(MnasNet))
    {
        // torchvision rounds up unless within 10% (its _round_to_multiple_of is the MakeDivisible rule).
        var d = Depths.Select(c => ConvNormActivation.MakeDivisible(c * alpha)).ToArray();
        layers = nn.Sequential(
            ("0", nn.Conv2d(3, d[0], kernel_size: 3, stride: 2, padding: 1, bias: false)),
            ("1", nn.BatchNorm2d(d[0], momentum: BnMomentum)), ("2", nn.ReLU(inplace: true)),
            ("3", nn.Conv2d(d[0], d[0], kernel_size: 3, padding: 1, groups: d[0], bias: false)),
            ("4", nn.BatchNorm2d(d[0], momentum: BnMomentum)), ("5", nn.ReLU(inplace: true)),
            ("6", nn.Conv2d(d[0], d[1], kernel_size: 1, bias: false)),
            ("7", nn.BatchNorm2d(d[1], momentum: BnMomentum)));
        for (int s = 0; s < Stacks.Length; s++)
        {
            var (kernel, stride, expansion, repeats) = Stacks[s];
            var stack = nn.Sequential();
            for (int i = 0; i < repeats; i++)
                stack.append(i.ToString(), new MnasBlock(i == 0 ? d[s + 1] : d[s + 2], d[s + 2], kernel, i == 0 ? stride : 1, expansion));
            layers.append((8 + s).ToString(), stack);
        }
        layers.append("14", nn.Conv2d(d[7], 1280, kernel_size: 1, bias: false));
        layers.append("15", nn.BatchNorm2d(1280, momentum: BnMomentum));
        layers.append("16", nn.ReLU(inplace: true));
        classifier = nn.Sequential(("0", nn.Dropout(dropout)), ("1", nn.Linear(1280, numClasses)));
        RegisterComponents();
        WeightInit.Apply(this, WeightInit.KaimingFanOut, linear: w => nn.init.kaiming_uniform_(w, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.Sigmoid), zeroLinearBias: true);
    }

    public override Linear Head => (Linear)classifier[1];

    public override IReadOnlyList<nn.Module[]> Stages => [[layers], [classifier]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = layers.call(x).mean([2, 3]);
        return ((nn.Module<Tensor, Tensor>)classifier[0]).call(y).MoveToOuterDisposeScope();
    }

    // mean over the map: GlobalAveragePool, then (N, C, 1, 1) flattened to (N, C).
    internal override string EmitFeatures(OnnxGraphBuilder g, string x) => g.Flatten(g.GlobalAveragePool(g.Module(layers, x)));
}

/// <summary>MnasNet's inverted residual: 1x1 expand, KxK depthwise, 1x1 linear projection, in one flat Sequential (torchvision's keys layers.0..7).</summary>
internal sealed class MnasBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    const double BnMomentum = 1 - 0.9997;
    readonly Sequential layers;
    readonly bool residual;

    public MnasBlock(long inChannels, long outChannels, long kernel, long stride, int expansion) : base(nameof(MnasBlock))
    {
        long mid = inChannels * expansion;
        residual = inChannels == outChannels && stride == 1;
        layers = nn.Sequential(
            ("0", nn.Conv2d(inChannels, mid, kernel_size: 1, bias: false)), ("1", nn.BatchNorm2d(mid, momentum: BnMomentum)), ("2", nn.ReLU(inplace: true)),
            ("3", nn.Conv2d(mid, mid, kernel_size: kernel, stride: stride, padding: kernel / 2, groups: mid, bias: false)),
            ("4", nn.BatchNorm2d(mid, momentum: BnMomentum)), ("5", nn.ReLU(inplace: true)),
            ("6", nn.Conv2d(mid, outChannels, kernel_size: 1, bias: false)), ("7", nn.BatchNorm2d(outChannels, momentum: BnMomentum)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => residual ? layers.call(x) + x : layers.call(x);

    public string EmitOnnx(OnnxGraphBuilder g, string x) => residual ? g.Add(g.Module(layers, x), x) : g.Module(layers, x);
}
