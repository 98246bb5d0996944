using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision")
/// in torchvision's form, for 299x299 input: a stem of five convolutions and two max pools
/// (to 192x35x35), three Inception-A modules (35x35), a grid reduction (B, to 17x17), four
/// Inception-C modules with factorised 1x7 / 7x1 convolutions, a second reduction (D, to 8x8), two
/// Inception-E modules with split 1x3 / 3x1 branches (2048 channels), global average pooling,
/// dropout 0.5 and a linear classifier. With <c>aux</c>, the auxiliary classifier after Mixed_6e
/// runs in training mode (<see cref="AuxiliaryLogits"/>). Every convolution is a BasicConv2d
/// (no bias, BatchNorm eps 0.001, ReLU). State_dict keys and order equal torchvision's.
/// </summary>
internal sealed class InceptionV3 : ClassifierModel
{
    // Declared in torchvision's order: registration order is the state_dict's.
    readonly BasicConv2d Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3;
    readonly MaxPool2d maxpool1;
    readonly BasicConv2d Conv2d_3b_1x1, Conv2d_4a_3x3;
    readonly MaxPool2d maxpool2;
    readonly InceptionA Mixed_5b, Mixed_5c, Mixed_5d;
    readonly InceptionB Mixed_6a;
    readonly InceptionC Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e;
    readonly InceptionV3Aux? AuxLogits;
    readonly InceptionD Mixed_7a;
    readonly InceptionE Mixed_7b, Mixed_7c;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Dropout dropout;
    readonly Linear fc;

    public override IReadOnlyList<Tensor> AuxiliaryLogits => _auxiliary;
    IReadOnlyList<Tensor> _auxiliary = [];

    public InceptionV3(int numClasses = 1000, bool aux = false, double dropoutRate = 0.5) : base(nameof(InceptionV3))
    {
        Conv2d_1a_3x3 = new BasicConv2d(3, 32, 3, stride: 2);
        Conv2d_2a_3x3 = new BasicConv2d(32, 32, 3);
        Conv2d_2b_3x3 = new BasicConv2d(32, 64, 3, padding: 1);
        maxpool1 = nn.MaxPool2d(kernel_size: 3, stride: 2);
        Conv2d_3b_1x1 = new BasicConv2d(64, 80, 1);
        Conv2d_4a_3x3 = new BasicConv2d(80, 192, 3);
        maxpool2 = nn.MaxPool2d(kernel_size: 3, stride: 2);
        Mixed_5b = new InceptionA(192, 32);
        Mixed_5c = new InceptionA(256, 64);
        Mixed_5d = new InceptionA(288, 64);
        Mixed_6a = new InceptionB(288);
        Mixed_6b = new InceptionC(768, 128);
        Mixed_6c = new InceptionC(768, 160);
        Mixed_6d = new InceptionC(768, 160);
        Mixed_6e = new InceptionC(768, 192);
        if (aux) AuxLogits = new InceptionV3Aux(768, numClasses);
        Mixed_7a = new InceptionD(768);
        Mixed_7b = new InceptionE(1280);
        Mixed_7c = new InceptionE(2048);
        avgpool = nn.AdaptiveAvgPool2d(1);
        dropout = nn.Dropout(dropoutRate);
        fc = nn.Linear(2048, numClasses);
        RegisterComponents();
        // torchvision's initialisation: N(0, 0.1) truncated at +-2 (20 standard deviations: a plain
        // normal) for every convolution and linear layer; the auxiliary head's 5x5 conv 0.01, its fc 0.001.
        WeightInit.Apply(this, w => nn.init.normal_(w, 0, 0.1), w => nn.init.normal_(w, 0, 0.1));
        AuxLogits?.InitialiseAsTorchvision();
    }

    public override Linear Head => fc;

    public override IReadOnlyList<nn.Module[]> Stages =>
    [
        [Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3, maxpool1, Conv2d_3b_1x1, Conv2d_4a_3x3, maxpool2],
        [Mixed_5b, Mixed_5c, Mixed_5d], [Mixed_6a, Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e], [Mixed_7a, Mixed_7b, Mixed_7c],
    ];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = Conv2d_2b_3x3.call(Conv2d_2a_3x3.call(Conv2d_1a_3x3.call(x)));
        y = maxpool2.call(Conv2d_4a_3x3.call(Conv2d_3b_1x1.call(maxpool1.call(y))));
        y = Mixed_5d.call(Mixed_5c.call(Mixed_5b.call(y)));
        y = Mixed_6e.call(Mixed_6d.call(Mixed_6c.call(Mixed_6b.call(Mixed_6a.call(y)))));
        var auxiliary = training && AuxLogits is not null ? new List<Tensor> { AuxLogits.call(y) } : [];
        y = Mixed_7c.call(Mixed_7b.call(Mixed_7a.call(y)));
        y = dropout.call(avgpool.call(y).flatten(1));
        _auxiliary = auxiliary.Select(a => a.MoveToOuterDisposeScope()).ToList();
        return y.MoveToOuterDisposeScope();
    }

    // The inference network: no auxiliary classifier, dropout is the identity.
    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Module(Conv2d_2b_3x3, g.Module(Conv2d_2a_3x3, g.Module(Conv2d_1a_3x3, x)));
        y = g.Module(maxpool2, g.Module(Conv2d_4a_3x3, g.Module(Conv2d_3b_1x1, g.Module(maxpool1, y))));
        y = g.Module(Mixed_5d, g.Module(Mixed_5c, g.Module(Mixed_5b, y)));
        y = g.Module(Mixed_6e, g.Module(Mixed_6d, g.Module(Mixed_6c, g.Module(Mixed_6b, g.Module(Mixed_6a, y)))));
        y = g.Module(Mixed_7c, g.Module(Mixed_7b, g.Module(Mixed_7a, y)));
        return g.Flatten(g.Module(avgpool, y));
    }

    /// <summary><see cref="AveragePool3x3(Tensor)"/> as an ONNX node.</summary>
    internal static string AveragePool3x3(OnnxGraphBuilder g, string x) => g.AveragePool(x, [3], [1], [1]);

    /// <summary>The grid reductions' 3x3 stride-2 max pool as an ONNX node.</summary>
    internal static string MaxPool3x3Stride2(OnnxGraphBuilder g, string x) => g.MaxPool(x, [3], [2], [0]);

    /// <summary>3x3 average pooling at stride 1 with padding 1 (zeros counted), the pool branch of modules A, C and E.</summary>
    internal static Tensor AveragePool3x3(Tensor x) => nn.functional.avg_pool2d(x, kernel_size: 3, stride: 1, padding: 1);
}

/// <summary>Inception-A (35x35): 1x1; 1x1 then 5x5; 1x1 then two 3x3; average pool then 1x1.</summary>
internal sealed class InceptionA : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly BasicConv2d branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3, branch_pool;

    public InceptionA(long inChannels, long poolFeatures) : base(nameof(InceptionA))
    {
        branch1x1 = new BasicConv2d(inChannels, 64, 1);
        branch5x5_1 = new BasicConv2d(inChannels, 48, 1);
        branch5x5_2 = new BasicConv2d(48, 64, 5, padding: 2);
        branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1);
        branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1);
        branch3x3dbl_3 = new BasicConv2d(96, 96, 3, padding: 1);
        branch_pool = new BasicConv2d(inChannels, poolFeatures, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return cat([
            branch1x1.call(x),
            branch5x5_2.call(branch5x5_1.call(x)),
            branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x))),
            branch_pool.call(InceptionV3.AveragePool3x3(x)),
        ], 1).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x) => g.Concat([
        g.Module(branch1x1, x),
        g.Module(branch5x5_2, g.Module(branch5x5_1, x)),
        g.Module(branch3x3dbl_3, g.Module(branch3x3dbl_2, g.Module(branch3x3dbl_1, x))),
        g.Module(branch_pool, InceptionV3.AveragePool3x3(g, x)),
    ]);
}

/// <summary>Inception-B, the first grid reduction (35x35 to 17x17): 3x3 stride 2; 1x1, 3x3, 3x3 stride 2; max pool stride 2.</summary>
internal sealed class InceptionB : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly BasicConv2d branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3;

    public InceptionB(long inChannels) : base(nameof(InceptionB))
    {
        branch3x3 = new BasicConv2d(inChannels, 384, 3, stride: 2);
        branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1);
        branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1);
        branch3x3dbl_3 = new BasicConv2d(96, 96, 3, stride: 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return cat([
            branch3x3.call(x),
            branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x))),
            nn.functional.max_pool2d(x, kernel_size: 3, stride: 2),
        ], 1).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x) => g.Concat([
        g.Module(branch3x3, x),
        g.Module(branch3x3dbl_3, g.Module(branch3x3dbl_2, g.Module(branch3x3dbl_1, x))),
        InceptionV3.MaxPool3x3Stride2(g, x),
    ]);
}

/// <summary>Inception-C (17x17): 7x7 convolutions factorised into 1x7 and 7x1 (section 3.2), with c7 channels inside.</summary>
internal sealed class InceptionC : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly BasicConv2d branch1x1, branch7x7_1, branch7x7_2, branch7x7_3,
        branch7x7dbl_1, branch7x7dbl_2, branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5, branch_pool;

    public InceptionC(long inChannels, long c7) : base(nameof(InceptionC))
    {
        branch1x1 = new BasicConv2d(inChannels, 192, 1);
        branch7x7_1 = new BasicConv2d(inChannels, c7, 1);
        branch7x7_2 = Row(c7, c7);
        branch7x7_3 = Column(c7, 192);
        branch7x7dbl_1 = new BasicConv2d(inChannels, c7, 1);
        branch7x7dbl_2 = Column(c7, c7);
        branch7x7dbl_3 = Row(c7, c7);
        branch7x7dbl_4 = Column(c7, c7);
        branch7x7dbl_5 = Row(c7, 192);
        branch_pool = new BasicConv2d(inChannels, 192, 1);
        RegisterComponents();
    }

    /// <summary>1x7 and 7x1 convolutions that keep the grid.</summary>
    internal static BasicConv2d Row(long inChannels, long outChannels) => new(inChannels, outChannels, (1, 7), (1, 1), (0, 3));
    internal static BasicConv2d Column(long inChannels, long outChannels) => new(inChannels, outChannels, (7, 1), (1, 1), (3, 0));

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return cat([
            branch1x1.call(x),
            branch7x7_3.call(branch7x7_2.call(branch7x7_1.call(x))),
            branch7x7dbl_5.call(branch7x7dbl_4.call(branch7x7dbl_3.call(branch7x7dbl_2.call(branch7x7dbl_1.call(x))))),
            branch_pool.call(InceptionV3.AveragePool3x3(x)),
        ], 1).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x) => g.Concat([
        g.Module(branch1x1, x),
        g.Module(branch7x7_3, g.Module(branch7x7_2, g.Module(branch7x7_1, x))),
        g.Module(branch7x7dbl_5, g.Module(branch7x7dbl_4, g.Module(branch7x7dbl_3, g.Module(branch7x7dbl_2, g.Module(branch7x7dbl_1, x))))),
        g.Module(branch_pool, InceptionV3.AveragePool3x3(g, x)),
    ]);
}

/// <summary>Inception-D, the second grid reduction (17x17 to 8x8): 1x1 then 3x3 stride 2; 1x1, 1x7, 7x1, 3x3 stride 2; max pool stride 2.</summary>
internal sealed class InceptionD : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly BasicConv2d branch3x3_1, branch3x3_2, branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4;

    public InceptionD(long inChannels) : base(nameof(InceptionD))
    {
        branch3x3_1 = new BasicConv2d(inChannels, 192, 1);
        branch3x3_2 = new BasicConv2d(192, 320, 3, stride: 2);
        branch7x7x3_1 = new BasicConv2d(inChannels, 192, 1);
        branch7x7x3_2 = InceptionC.Row(192, 192);
        branch7x7x3_3 = InceptionC.Column(192, 192);
        branch7x7x3_4 = new BasicConv2d(192, 192, 3, stride: 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return cat([
            branch3x3_2.call(branch3x3_1.call(x)),
            branch7x7x3_4.call(branch7x7x3_3.call(branch7x7x3_2.call(branch7x7x3_1.call(x)))),
            nn.functional.max_pool2d(x, kernel_size: 3, stride: 2),
        ], 1).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x) => g.Concat([
        g.Module(branch3x3_2, g.Module(branch3x3_1, x)),
        g.Module(branch7x7x3_4, g.Module(branch7x7x3_3, g.Module(branch7x7x3_2, g.Module(branch7x7x3_1, x)))),
        InceptionV3.MaxPool3x3Stride2(g, x),
    ]);
}

/// <summary>Inception-E (8x8): the 3x3 branches end in parallel 1x3 and 3x1 convolutions, concatenated (the expanded filter bank of section 6).</summary>
internal sealed class InceptionE : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly BasicConv2d branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b,
        branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3a, branch3x3dbl_3b, branch_pool;

    public InceptionE(long inChannels) : base(nameof(InceptionE))
    {
        branch1x1 = new BasicConv2d(inChannels, 320, 1);
        branch3x3_1 = new BasicConv2d(inChannels, 384, 1);
        branch3x3_2a = new BasicConv2d(384, 384, (1, 3), (1, 1), (0, 1));
        branch3x3_2b = new BasicConv2d(384, 384, (3, 1), (1, 1), (1, 0));
        branch3x3dbl_1 = new BasicConv2d(inChannels, 448, 1);
        branch3x3dbl_2 = new BasicConv2d(448, 384, 3, padding: 1);
        branch3x3dbl_3a = new BasicConv2d(384, 384, (1, 3), (1, 1), (0, 1));
        branch3x3dbl_3b = new BasicConv2d(384, 384, (3, 1), (1, 1), (1, 0));
        branch_pool = new BasicConv2d(inChannels, 192, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b3 = branch3x3_1.call(x);
        var bd = branch3x3dbl_2.call(branch3x3dbl_1.call(x));
        return cat([
            branch1x1.call(x),
            branch3x3_2a.call(b3), branch3x3_2b.call(b3),
            branch3x3dbl_3a.call(bd), branch3x3dbl_3b.call(bd),
            branch_pool.call(InceptionV3.AveragePool3x3(x)),
        ], 1).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var first = g.Module(branch1x1, x);
        var b3 = g.Module(branch3x3_1, x);
        var (b3a, b3b) = (g.Module(branch3x3_2a, b3), g.Module(branch3x3_2b, b3));
        var bd = g.Module(branch3x3dbl_2, g.Module(branch3x3dbl_1, x));
        var (bda, bdb) = (g.Module(branch3x3dbl_3a, bd), g.Module(branch3x3dbl_3b, bd));
        return g.Concat([first, b3a, b3b, bda, bdb, g.Module(branch_pool, InceptionV3.AveragePool3x3(g, x))]);
    }
}

/// <summary>Inception-v3's auxiliary classifier on the 17x17 grid: 5x5 average pool stride 3, 1x1 conv to 128, 5x5 conv to 768, global pool, fc.</summary>
internal sealed class InceptionV3Aux : nn.Module<Tensor, Tensor>
{
    readonly BasicConv2d conv0, conv1;
    readonly Linear fc;

    public InceptionV3Aux(long inChannels, int numClasses) : base(nameof(InceptionV3Aux))
    {
        conv0 = new BasicConv2d(inChannels, 128, 1);
        conv1 = new BasicConv2d(128, 768, 5);
        fc = nn.Linear(768, numClasses);
        RegisterComponents();
    }

    /// <summary>torchvision's smaller initial weights for this head: N(0, 0.01) for the 5x5 conv, N(0, 0.001) for fc.</summary>
    internal void InitialiseAsTorchvision()
    {
        using var _ = no_grad();
        foreach (var (_, m) in conv1.named_modules()) if (m is Conv2d c) nn.init.normal_(c.weight!, 0, 0.01);
        nn.init.normal_(fc.weight!, 0, 0.001);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = conv1.call(conv0.call(nn.functional.avg_pool2d(x, kernel_size: 5, stride: 3)));
        return fc.call(nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)).MoveToOuterDisposeScope();
    }
}
