using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// Inception-v4 (Szegedy, Ioffe, Vanhoucke and Alemi 2017, "Inception-v4, Inception-ResNet and the
/// Impact of Residual Connections on Learning", figures 3-9), for 299x299 input: the stem of
/// figure 3 (to 384x35x35), four Inception-A modules, Reduction-A (k=192, l=224, m=256, n=384; to
/// 1024x17x17), seven Inception-B modules, Reduction-B (to 1536x8x8), three Inception-C modules,
/// global average pooling, dropout (keep 0.8) and a linear classifier. Every convolution is a
/// BasicConv2d (no bias, BatchNorm eps 0.001, ReLU), as in the TF-slim release the paper's
/// numbers come from; the figures' "V" convolutions are unpadded, the others keep the grid, and the
/// modules' average pools count real pixels only (TF-slim's 'SAME' pooling). Each module is a
/// <see cref="ConcatBranches"/> of its branches, listed left to right as the figures draw them.
/// </summary>
internal sealed class InceptionV4 : ClassifierModel
{
    readonly Sequential stem, blocksA, reductionA, blocksB, reductionB, blocksC;
    readonly Dropout dropout;
    readonly Linear fc;

    public InceptionV4(int numClasses = 1000, double dropoutRate = 0.2) : base(nameof(InceptionV4))
    {
        stem = nn.Sequential(
            Conv(3, 32, 3, stride: 2), Conv(32, 32, 3), Conv(32, 64, 3, padding: 1),
            new ConcatBranches(MaxPool(), Conv(64, 96, 3, stride: 2)),
            new ConcatBranches(
                nn.Sequential(Conv(160, 64, 1), Conv(64, 96, 3)),
                nn.Sequential(Conv(160, 64, 1), Row(64, 64, 7), Column(64, 64, 7), Conv(64, 96, 3))),
            new ConcatBranches(Conv(192, 192, 3, stride: 2), MaxPool()));
        blocksA = Repeat(4, _ => BlockA());
        reductionA = nn.Sequential(ReductionA(384, k: 192, l: 224, m: 256, n: 384));
        blocksB = Repeat(7, _ => BlockB());
        reductionB = nn.Sequential(new ConcatBranches(
            nn.Sequential(Conv(1024, 192, 1), Conv(192, 192, 3, stride: 2)),
            nn.Sequential(Conv(1024, 256, 1), Row(256, 256, 7), Column(256, 320, 7), Conv(320, 320, 3, stride: 2)),
            MaxPool()));
        blocksC = Repeat(3, _ => BlockC());
        dropout = nn.Dropout(dropoutRate);
        fc = nn.Linear(1536, numClasses);
        RegisterComponents();
        WeightInit.Apply(this, WeightInit.GlorotUniform, WeightInit.GlorotUniform, zeroLinearBias: true);
    }

    public override Linear Head => fc;

    public override IReadOnlyList<nn.Module[]> Stages => [[stem], [blocksA], [reductionA, blocksB], [reductionB, blocksC]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = blocksC.call(reductionB.call(blocksB.call(reductionA.call(blocksA.call(stem.call(x))))));
        return dropout.call(nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Module(blocksC, g.Module(reductionB, g.Module(blocksB, g.Module(reductionA, g.Module(blocksA, g.Module(stem, x))))));
        return g.Flatten(g.GlobalAveragePool(y));
    }

    /// <summary>Inception-A, figure 4 (384x35x35): 1x1; 1x1, 3x3; 1x1, 3x3, 3x3; average pool, 1x1; 96 channels each.</summary>
    static ConcatBranches BlockA() => new(
        Conv(384, 96, 1),
        nn.Sequential(Conv(384, 64, 1), Conv(64, 96, 3, padding: 1)),
        nn.Sequential(Conv(384, 64, 1), Conv(64, 96, 3, padding: 1), Conv(96, 96, 3, padding: 1)),
        nn.Sequential(AveragePool(), Conv(384, 96, 1)));

    /// <summary>Inception-B, figure 5 (1024x17x17): 1x1 to 384; 1x1, 1x7, 7x1 to 256; 1x1, 7x1, 1x7, 7x1, 1x7 to 256; average pool, 1x1 to 128.</summary>
    static ConcatBranches BlockB() => new(
        Conv(1024, 384, 1),
        nn.Sequential(Conv(1024, 192, 1), Row(192, 224, 7), Column(224, 256, 7)),
        nn.Sequential(Conv(1024, 192, 1), Column(192, 192, 7), Row(192, 224, 7), Column(224, 224, 7), Row(224, 256, 7)),
        nn.Sequential(AveragePool(), Conv(1024, 128, 1)));

    /// <summary>
    /// Inception-C, figure 6 (1536x8x8): 1x1 to 256; 1x1 to 384 then 1x3 and 3x1 to 256 each; 1x1 to
    /// 384, 3x1 to 448, 1x3 to 512, then 1x3 and 3x1 to 256 each; average pool, 1x1 to 256.
    /// </summary>
    static ConcatBranches BlockC() => new(
        Conv(1536, 256, 1),
        nn.Sequential(Conv(1536, 384, 1), new ConcatBranches(Row(384, 256, 3), Column(384, 256, 3))),
        nn.Sequential(Conv(1536, 384, 1), Column(384, 448, 3), Row(448, 512, 3), new ConcatBranches(Row(512, 256, 3), Column(512, 256, 3))),
        nn.Sequential(AveragePool(), Conv(1536, 256, 1)));

    /// <summary>
    /// Reduction-A, figure 7 (35x35 to 17x17), shared with Inception-ResNet-v2 with the filter
    /// counts of table 1: 3x3 stride 2 to n; 1x1 to k, 3x3 to l, 3x3 stride 2 to m; max pool stride 2.
    /// </summary>
    internal static ConcatBranches ReductionA(long inChannels, long k, long l, long m, long n) => new(
        Conv(inChannels, n, 3, stride: 2),
        nn.Sequential(Conv(inChannels, k, 1), Conv(k, l, 3, padding: 1), Conv(l, m, 3, stride: 2)),
        MaxPool());

    /// <summary>A Sequential of <paramref name="count"/> blocks, each built by <paramref name="block"/> from its index.</summary>
    internal static Sequential Repeat(int count, Func<int, nn.Module<Tensor, Tensor>> block) =>
        nn.Sequential(Enumerable.Range(0, count).Select(block).ToArray());

    internal static BasicConv2d Conv(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0) =>
        new(inChannels, outChannels, kernel, stride, padding);

    /// <summary>1xn and nx1 convolutions that keep the grid.</summary>
    internal static BasicConv2d Row(long inChannels, long outChannels, long n) => new(inChannels, outChannels, (1, n), (1, 1), (0, n / 2));
    internal static BasicConv2d Column(long inChannels, long outChannels, long n) => new(inChannels, outChannels, (n, 1), (1, 1), (n / 2, 0));

    /// <summary>3x3 max pool, stride 2, unpadded: the grid reductions' pool branch.</summary>
    internal static MaxPool2d MaxPool() => nn.MaxPool2d(kernel_size: 3, stride: 2);

    /// <summary>3x3 average pool at stride 1 that keeps the grid and averages real pixels only.</summary>
    internal static AvgPool2d AveragePool() => nn.AvgPool2d(kernel_size: 3, stride: 1, padding: 1, count_include_pad: false);
}
