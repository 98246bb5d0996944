using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using static Trainer.Models.Families.InceptionV4;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke and Alemi 2017, "Inception-v4, Inception-ResNet
/// and the Impact of Residual Connections on Learning") as the authors released it in TF-slim, the
/// network behind the paper's 19.9% / 4.9% and the published 55.8M parameters: an Inception-v3-like
/// stem with a mixed 35x35 module (320x35x35), ten Inception-ResNet-A blocks (residuals scaled by
/// 0.17), Reduction-A (k=256, l=256, m=384, n=384; to 1088x17x17), twenty Inception-ResNet-B
/// blocks (0.10), Reduction-B (to 2080x8x8), ten Inception-ResNet-C blocks (0.20; the last without
/// its ReLU), a 1x1 convolution to 1536, global average pooling, dropout (keep 0.8) and a linear
/// classifier. Section 3.3 scales each residual by 0.1 to 0.3 before the addition, which keeps
/// training stable with many filters. The paper's figures 15-18 draw other widths (a 384-channel
/// stem, 1154 and 2048 channels) and fewer blocks (5, 10, 5); the release, like every later
/// implementation, has the widths above. Convolutions and pools as in <see cref="InceptionV4"/>.
/// </summary>
internal sealed class InceptionResNetV2 : ClassifierModel
{
    readonly Sequential stem, blocksA, reductionA, blocksB, reductionB, blocksC;
    readonly BasicConv2d conv7b;
    readonly Dropout dropout;
    readonly Linear fc;

    public InceptionResNetV2(int numClasses = 1000, double dropoutRate = 0.2) : base(nameof(InceptionResNetV2))
    {
        stem = nn.Sequential(
            Conv(3, 32, 3, stride: 2), Conv(32, 32, 3), Conv(32, 64, 3, padding: 1), MaxPool(),
            Conv(64, 80, 1), Conv(80, 192, 3), MaxPool(),
            // The release's 35x35 module (192 to 320 channels).
            new ConcatBranches(
                Conv(192, 96, 1),
                nn.Sequential(Conv(192, 48, 1), Conv(48, 64, 5, padding: 2)),
                nn.Sequential(Conv(192, 64, 1), Conv(64, 96, 3, padding: 1), Conv(96, 96, 3, padding: 1)),
                nn.Sequential(AveragePool(), Conv(192, 64, 1))));
        // Figure 16 (320x35x35): 1x1; 1x1, 3x3; 1x1, 3x3 to 48, 3x3 to 64; to 320.
        blocksA = Repeat(10, _ => new ScaledResidual(0.17, 320, new ConcatBranches(
            Conv(320, 32, 1),
            nn.Sequential(Conv(320, 32, 1), Conv(32, 32, 3, padding: 1)),
            nn.Sequential(Conv(320, 32, 1), Conv(32, 48, 3, padding: 1), Conv(48, 64, 3, padding: 1))), 128));
        reductionA = nn.Sequential(ReductionA(320, k: 256, l: 256, m: 384, n: 384));
        // Figure 17 (1088x17x17): 1x1 to 192; 1x1 to 128, 1x7 to 160, 7x1 to 192; to 1088.
        blocksB = Repeat(20, _ => new ScaledResidual(0.10, 1088, new ConcatBranches(
            Conv(1088, 192, 1),
            nn.Sequential(Conv(1088, 128, 1), Row(128, 160, 7), Column(160, 192, 7))), 384));
        // Figure 18, with the release's widths (1088x17x17 to 2080x8x8).
        reductionB = nn.Sequential(new ConcatBranches(
            nn.Sequential(Conv(1088, 256, 1), Conv(256, 384, 3, stride: 2)),
            nn.Sequential(Conv(1088, 256, 1), Conv(256, 288, 3, stride: 2)),
            nn.Sequential(Conv(1088, 256, 1), Conv(256, 288, 3, padding: 1), Conv(288, 320, 3, stride: 2)),
            MaxPool()));
        // Figure 19 (2080x8x8): 1x1 to 192; 1x1 to 192, 1x3 to 224, 3x1 to 256; to 2080. The last block: scale 1, no ReLU.
        blocksC = Repeat(10, i => new ScaledResidual(i < 9 ? 0.20 : 1.0, 2080, new ConcatBranches(
            Conv(2080, 192, 1),
            nn.Sequential(Conv(2080, 192, 1), Row(192, 224, 3), Column(224, 256, 3))), 448, relu: i < 9));
        conv7b = Conv(2080, 1536, 1);
        dropout = nn.Dropout(dropoutRate);
        fc = nn.Linear(1536, numClasses);
        RegisterComponents();
        WeightInit.Apply(this, WeightInit.GlorotUniform, WeightInit.GlorotUniform, zeroLinearBias: true);
    }

    public override Linear Head => fc;

    public override IReadOnlyList<nn.Module[]> Stages => [[stem], [blocksA], [reductionA, blocksB], [reductionB, blocksC, conv7b]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = blocksC.call(reductionB.call(blocksB.call(reductionA.call(blocksA.call(stem.call(x))))));
        return dropout.call(nn.functional.adaptive_avg_pool2d(conv7b.call(y), 1).flatten(1)).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Module(blocksC, g.Module(reductionB, g.Module(blocksB, g.Module(reductionA, g.Module(blocksA, g.Module(stem, x))))));
        return g.Flatten(g.GlobalAveragePool(g.Module(conv7b, y)));
    }
}

/// <summary>
/// An Inception-ResNet block (figure 20): the branches' concatenation, a 1x1 convolution with bias
/// back to the input's width (no BatchNorm), scaled and added to the input, then ReLU (optional).
/// </summary>
internal sealed class ScaledResidual : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly ConcatBranches branches;
    readonly Conv2d up;
    readonly double _scale;
    readonly bool _relu;

    public ScaledResidual(double scale, long channels, ConcatBranches branches, long branchChannels, bool relu = true) : base(nameof(ScaledResidual))
    {
        _scale = scale;
        _relu = relu;
        this.branches = branches;
        up = nn.Conv2d(branchChannels, channels, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var sum = x.add(up.call(branches.call(x)), alpha: _scale);
        return (_relu ? nn.functional.relu(sum, inplace: true) : sum).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var residual = g.Module(up, g.Module(branches, x));
        if (_scale != 1) residual = g.Mul(residual, g.Scalar((float)_scale));
        var sum = g.Add(x, residual);
        return _relu ? g.Relu(sum) : sum;
    }
}
