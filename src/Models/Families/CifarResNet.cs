using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// The CIFAR ResNets of He et al. (2015), section 4.2: a 3x3 stem, three stages of n basic blocks
/// with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps, global average pooling and a linear
/// classifier: 6n+2 weighted layers. With <see cref="Shortcut.None"/> it is the matching plain net;
/// with <c>squeezeExcite</c> every block gets an SE block (SE-ResNet-20/56/110 of Hu et al. 2018).
/// </summary>
internal sealed class CifarResNet : ClassifierModel
{
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Sequential layer1, layer2, layer3;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Linear fc;

    /// <param name="blocksPerStage">n: 6n + 2 layers (ResNet-20 has n = 3).</param>
    /// <param name="numClasses">outputs of the classifier.</param>
    /// <param name="shortcut">A (zero padding) or B (projections) where the shape changes.</param>
    /// <param name="squeezeExcite">an SE block on every residual branch (SE-ResNet).</param>
    /// <param name="stochasticDepth">Huang et al. (2016)'s linear decay rule: block l of L is skipped with probability l / L * this (0.5 in their CIFAR runs).</param>
    public CifarResNet(int blocksPerStage, int numClasses = 10, Shortcut shortcut = Shortcut.A, bool squeezeExcite = false, double stochasticDepth = 0)
        : base(nameof(CifarResNet))
    {
        conv1 = Convs.Conv3x3(3, 16);
        bn1 = nn.BatchNorm2d(16);
        int total = 3 * blocksPerStage;
        double Drop(int stage, int i) => stochasticDepth * (stage * blocksPerStage + i + 1) / total;
        layer1 = Stage(16, 16, blocksPerStage, stride: 1, shortcut, squeezeExcite, i => Drop(0, i));
        layer2 = Stage(16, 32, blocksPerStage, stride: 2, shortcut, squeezeExcite, i => Drop(1, i));
        layer3 = Stage(32, 64, blocksPerStage, stride: 2, shortcut, squeezeExcite, i => Drop(2, i));
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(64, numClasses);
        RegisterComponents();
        HeInit.Apply(this);
    }

    /// <summary>Depth in the paper's sense (6n+2) to blocks per stage n.</summary>
    public static int BlocksForDepth(int depth) =>
        (depth - 2) % 6 == 0 && depth >= 8 ? (depth - 2) / 6 : throw new ArgumentException($"CIFAR ResNet depth must be 6n+2, got {depth}");

    static Sequential Stage(long inChannels, long outChannels, int blocks, long stride, Shortcut shortcut, bool squeezeExcite, Func<int, double> drop)
    {
        var stage = nn.Sequential();
        for (int i = 0; i < blocks; i++)
            stage.append(i.ToString(), new BasicBlock(i == 0 ? inChannels : outChannels, outChannels, i == 0 ? stride : 1, shortcut, squeezeExcite, drop(i)));
        return stage;
    }

    public override Linear Head => fc;

    public override IReadOnlyList<nn.Module[]> Stages => [[conv1, bn1], [layer1], [layer2], [layer3]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.relu(bn1.call(conv1.call(x)));
        y = layer3.call(layer2.call(layer1.call(y)));
        return avgpool.call(y).flatten(1).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Relu(g.Module(bn1, g.Module(conv1, x)));
        y = g.Module(layer3, g.Module(layer2, g.Module(layer1, y)));
        return g.Flatten(g.Module(avgpool, y));
    }
}
