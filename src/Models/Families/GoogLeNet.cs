using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// GoogLeNet / Inception v1 (Szegedy et al. 2014) as torchvision builds it: a 7x7 stem, nine
/// Inception modules (parallel 1x1, 1x1->3x3, 1x1->"5x5" and pool->1x1 branches, concatenated),
/// global average pooling, dropout 0.2 and a linear classifier. torchvision (and so this model)
/// uses 3x3 kernels in the "5x5" branch. With <c>aux</c>, two auxiliary classifiers (after 4a and
/// 4d) run in training mode; their logits are kept in <see cref="AuxiliaryLogits"/> for a loss
/// weighted 0.3. Without it (the default) the network is the inference network whose parameters
/// torchvision reports (6,624,904).
/// </summary>
internal sealed class GoogLeNet : ClassifierModel
{
    readonly BasicConv2d conv1, conv2, conv3;
    readonly MaxPool2d maxpool1, maxpool2, maxpool3, maxpool4;
    readonly Inception inception3a, inception3b, inception4a, inception4b, inception4c, inception4d, inception4e, inception5a, inception5b;
    readonly InceptionAux? aux1, aux2;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Dropout dropout;
    readonly Linear fc;

    /// <summary>The two auxiliary classifiers' logits from the last training-mode forward (empty otherwise).</summary>
    public override IReadOnlyList<Tensor> AuxiliaryLogits => _auxiliary;
    IReadOnlyList<Tensor> _auxiliary = [];

    public GoogLeNet(int numClasses = 1000, bool aux = false, double dropoutRate = 0.2, double auxDropout = 0.7) : base(nameof(GoogLeNet))
    {
        conv1 = new BasicConv2d(3, 64, 7, stride: 2, padding: 3);
        maxpool1 = nn.MaxPool2d(kernel_size: 3, stride: 2, ceil_mode: true);
        conv2 = new BasicConv2d(64, 64, 1);
        conv3 = new BasicConv2d(64, 192, 3, padding: 1);
        maxpool2 = nn.MaxPool2d(kernel_size: 3, stride: 2, ceil_mode: true);
        inception3a = new Inception(192, 64, 96, 128, 16, 32, 32);
        inception3b = new Inception(256, 128, 128, 192, 32, 96, 64);
        maxpool3 = nn.MaxPool2d(kernel_size: 3, stride: 2, ceil_mode: true);
        inception4a = new Inception(480, 192, 96, 208, 16, 48, 64);
        inception4b = new Inception(512, 160, 112, 224, 24, 64, 64);
        inception4c = new Inception(512, 128, 128, 256, 24, 64, 64);
        inception4d = new Inception(512, 112, 144, 288, 32, 64, 64);
        inception4e = new Inception(528, 256, 160, 320, 32, 128, 128);
        maxpool4 = nn.MaxPool2d(kernel_size: 2, stride: 2, ceil_mode: true);
        inception5a = new Inception(832, 256, 160, 320, 32, 128, 128);
        inception5b = new Inception(832, 384, 192, 384, 48, 128, 128);
        if (aux)
        {
            aux1 = new InceptionAux(512, numClasses, auxDropout);
            aux2 = new InceptionAux(528, numClasses, auxDropout);
        }
        avgpool = nn.AdaptiveAvgPool2d(1);
        dropout = nn.Dropout(dropoutRate);
        fc = nn.Linear(1024, numClasses);
        RegisterComponents();
        // torchvision's GoogLeNet initialisation: a normal of std 0.01 truncated at +-2, i.e. at 200 standard
        // deviations, which is a plain N(0, 0.01). (TorchSharp 0.107's trunc_normal_ returns values near 0.)
        WeightInit.Apply(this, WeightInit.Normal001, WeightInit.Normal001, zeroLinearBias: true);
    }

    public override Linear Head => fc;

    public override IReadOnlyList<nn.Module[]> Stages =>
    [
        [conv1, conv2, conv3], [inception3a, inception3b], [inception4a, inception4b, inception4c, inception4d, inception4e], [inception5a, inception5b],
    ];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var auxiliary = new List<Tensor>();
        bool withAux = training && aux1 is not null;
        var y = maxpool2.call(conv3.call(conv2.call(maxpool1.call(conv1.call(x)))));
        y = maxpool3.call(inception3b.call(inception3a.call(y)));
        y = inception4a.call(y);
        if (withAux) auxiliary.Add(aux1!.call(y));
        y = inception4d.call(inception4c.call(inception4b.call(y)));
        if (withAux) auxiliary.Add(aux2!.call(y));
        y = maxpool4.call(inception4e.call(y));
        y = inception5b.call(inception5a.call(y));
        y = dropout.call(avgpool.call(y).flatten(1));
        _auxiliary = auxiliary.Select(a => a.MoveToOuterDisposeScope()).ToList();
        return y.MoveToOuterDisposeScope();
    }

    // The inference network: no auxiliary classifiers, dropout is the identity.
    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Module(maxpool2, g.Module(conv3, g.Module(conv2, g.Module(maxpool1, g.Module(conv1, x)))));
        y = g.Module(maxpool3, g.Module(inception3b, g.Module(inception3a, y)));
        y = g.Module(inception4d, g.Module(inception4c, g.Module(inception4b, g.Module(inception4a, y))));
        y = g.Module(maxpool4, g.Module(inception4e, y));
        y = g.Module(inception5b, g.Module(inception5a, y));
        return g.Flatten(g.Module(avgpool, y));
    }
}

/// <summary>Convolution (no bias), BatchNorm (eps 0.001), ReLU: torchvision's BasicConv2d.</summary>
internal sealed class BasicConv2d : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly Conv2d conv;
    readonly BatchNorm2d bn;

    public BasicConv2d(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0)
        : this(inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding)) { }

    /// <summary>A rectangular kernel (Inception-v3's factorised 1x7 and 7x1 convolutions).</summary>
    public BasicConv2d(long inChannels, long outChannels, (long H, long W) kernel, (long H, long W) stride, (long H, long W) padding) : base(nameof(BasicConv2d))
    {
        conv = nn.Conv2d(inChannels, outChannels, kernel_size: (kernel.H, kernel.W), stride: (stride.H, stride.W), padding: (padding.H, padding.W), bias: false);
        bn = nn.BatchNorm2d(outChannels, eps: 0.001);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.relu(bn.call(conv.call(x)));

    public string EmitOnnx(OnnxGraphBuilder g, string x) => g.Relu(g.Module(bn, g.Module(conv, x)));
}

/// <summary>
/// An Inception module: 1x1; 1x1 reduce then 3x3; 1x1 reduce then a second 3x3 (torchvision's
/// "5x5" branch); 3x3 max pool then 1x1 projection; the four outputs concatenated.
/// </summary>
internal sealed class Inception : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly nn.Module<Tensor, Tensor> branch1;
    readonly Sequential branch2, branch3, branch4;

    public Inception(long inChannels, long ch1x1, long ch3x3Reduce, long ch3x3, long ch5x5Reduce, long ch5x5, long poolProjection) : base(nameof(Inception))
    {
        branch1 = new BasicConv2d(inChannels, ch1x1, 1);
        branch2 = nn.Sequential(new BasicConv2d(inChannels, ch3x3Reduce, 1), new BasicConv2d(ch3x3Reduce, ch3x3, 3, padding: 1));
        branch3 = nn.Sequential(new BasicConv2d(inChannels, ch5x5Reduce, 1), new BasicConv2d(ch5x5Reduce, ch5x5, 3, padding: 1));
        branch4 = nn.Sequential(nn.MaxPool2d(kernel_size: 3, stride: 1, padding: 1, ceil_mode: true), new BasicConv2d(inChannels, poolProjection, 1));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => cat([branch1.call(x), branch2.call(x), branch3.call(x), branch4.call(x)], 1);

    public string EmitOnnx(OnnxGraphBuilder g, string x) => g.Concat([g.Module(branch1, x), g.Module(branch2, x), g.Module(branch3, x), g.Module(branch4, x)]);
}

/// <summary>An auxiliary classifier: 4x4 average pool, 1x1 conv to 128, fc 2048->1024 with ReLU and dropout, fc to the classes.</summary>
internal sealed class InceptionAux : nn.Module<Tensor, Tensor>
{
    readonly BasicConv2d conv;
    readonly Linear fc1, fc2;
    readonly Dropout dropout;

    public InceptionAux(long inChannels, int numClasses, double dropoutRate) : base(nameof(InceptionAux))
    {
        conv = new BasicConv2d(inChannels, 128, 1);
        fc1 = nn.Linear(2048, 1024);
        fc2 = nn.Linear(1024, numClasses);
        dropout = nn.Dropout(dropoutRate);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var y = conv.call(nn.functional.adaptive_avg_pool2d(x, 4)).flatten(1);
        return fc2.call(dropout.call(nn.functional.relu(fc1.call(y))));
    }
}
