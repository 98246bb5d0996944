using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// DenseNet (Huang et al. 2017): dense blocks in which every layer receives all earlier feature
/// maps, joined by transitions (BN, ReLU, 1x1 conv, 2x2 average pool). The ImageNet forms follow
/// torchvision (bottleneck layers with 4k channels, compression 0.5, a 7x7 stem); the CIFAR forms
/// follow the paper's section 3: DenseNet-BC (bottleneck + compression, a 3x3 stem of 2k channels)
/// and the original DenseNet (single 3x3 conv layers, no compression, a 16-channel stem).
/// </summary>
internal sealed class DenseNet : ClassifierModel
{
    readonly Sequential features;
    readonly Linear classifier;

    /// <summary>torchvision's ImageNet DenseNet-121/161/169/201.</summary>
    public static DenseNet ImageNet(int growth, int[] blocks, int initialFeatures, int numClasses, double dropRate = 0) =>
        new(growth, blocks, initialFeatures, numClasses, bottleneck: true, compression: 0.5, imagenetStem: true, dropRate);

    /// <summary>A CIFAR DenseNet of depth L: BC nets have (L-4)/6 bottleneck layers per block, plain ones (L-4)/3.</summary>
    /// <param name="depth">L, the layers counted as the paper counts them.</param>
    /// <param name="growth">k, the feature maps each layer adds.</param>
    /// <param name="bc">bottleneck layers and compression 0.5 (DenseNet-BC).</param>
    /// <param name="numClasses">outputs of the classifier.</param>
    /// <param name="dropRate">Dropout on each layer's new feature maps (the paper's 0.2 for runs without augmentation; torchvision's drop_rate).</param>
    public static DenseNet Cifar(int depth, int growth, bool bc, int numClasses, double dropRate = 0)
    {
        int layers = bc ? (depth - 4) / 6 : (depth - 4) / 3;
        return new(growth, [layers, layers, layers], bc ? 2 * growth : 16, numClasses, bottleneck: bc, compression: bc ? 0.5 : 1.0, imagenetStem: false, dropRate);
    }

    DenseNet(int growth, int[] blocks, int initialFeatures, int numClasses, bool bottleneck, double compression, bool imagenetStem, double dropRate) : base(nameof(DenseNet))
    {
        features = imagenetStem
            ? nn.Sequential(
                ("conv0", nn.Conv2d(3, initialFeatures, kernel_size: 7, stride: 2, padding: 3, bias: false)),
                ("norm0", nn.BatchNorm2d(initialFeatures)), ("relu0", nn.ReLU(inplace: true)),
                ("pool0", nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1)))
            : nn.Sequential(("conv0", nn.Conv2d(3, initialFeatures, kernel_size: 3, padding: 1, bias: false)));
        long channels = initialFeatures;
        for (int b = 0; b < blocks.Length; b++)
        {
            features.append($"denseblock{b + 1}", new DenseBlock(blocks[b], channels, growth, bottleneck, dropRate));
            channels += (long)blocks[b] * growth;
            if (b == blocks.Length - 1) break;
            long reduced = (long)Math.Floor(channels * compression);
            features.append($"transition{b + 1}", nn.Sequential(
                ("norm", nn.BatchNorm2d(channels)), ("relu", nn.ReLU(inplace: true)),
                ("conv", nn.Conv2d(channels, reduced, kernel_size: 1, bias: false)), ("pool", nn.AvgPool2d(kernel_size: 2, stride: 2))));
            channels = reduced;
        }
        features.append($"norm{(imagenetStem ? 5 : blocks.Length + 1)}", nn.BatchNorm2d(channels));
        classifier = nn.Linear(channels, numClasses);
        RegisterComponents();
        // torchvision's DenseNet initialisation: Kaiming-normal (fan_in) convolutions, BatchNorm 1/0, zero linear bias.
        WeightInit.Apply(this, w => nn.init.kaiming_normal_(w), zeroLinearBias: true);
    }

    public override Linear Head => classifier;

    public override IReadOnlyList<nn.Module[]> Stages => [[features]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.relu(features.call(x));
        return nn.functional.adaptive_avg_pool2d(y, 1).flatten(1).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x) =>
        g.Flatten(g.GlobalAveragePool(g.Relu(g.Module(features, x))));
}

/// <summary>Layers denselayer1..N; each sees the concatenation of the block input and every earlier layer's output.</summary>
internal sealed class DenseBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly List<DenseLayer> _layers = new();

    public DenseBlock(int layers, long inChannels, long growth, bool bottleneck, double dropRate = 0) : base(nameof(DenseBlock))
    {
        for (int i = 0; i < layers; i++)
        {
            var layer = new DenseLayer(inChannels + i * growth, growth, bottleneck, dropRate: dropRate);
            _layers.Add(layer);
            register_module($"denselayer{i + 1}", layer);
        }
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var maps = new List<Tensor> { x };
        foreach (var layer in _layers) maps.Add(layer.call(cat(maps, 1)));
        return cat(maps, 1).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var maps = new List<string> { x };
        foreach (var layer in _layers) maps.Add(g.Module(layer, maps.Count == 1 ? x : g.Concat(maps)));
        return g.Concat(maps);
    }
}

/// <summary>BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k) with a bottleneck, else BN-ReLU-Conv3x3(k).</summary>
internal sealed class DenseLayer : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly BatchNorm2d norm1;
    readonly ReLU relu1;
    readonly Conv2d conv1;
    readonly BatchNorm2d? norm2;
    readonly ReLU? relu2;
    readonly Conv2d? conv2;
    readonly double _dropRate;

    public DenseLayer(long inChannels, long growth, bool bottleneck, int bnSize = 4, double dropRate = 0) : base(nameof(DenseLayer))
    {
        _dropRate = dropRate;
        norm1 = nn.BatchNorm2d(inChannels);
        relu1 = nn.ReLU(inplace: true);
        if (bottleneck)
        {
            conv1 = nn.Conv2d(inChannels, bnSize * growth, kernel_size: 1, bias: false);
            norm2 = nn.BatchNorm2d(bnSize * growth);
            relu2 = nn.ReLU(inplace: true);
            conv2 = nn.Conv2d(bnSize * growth, growth, kernel_size: 3, padding: 1, bias: false);
        }
        else
        {
            conv1 = nn.Conv2d(inChannels, growth, kernel_size: 3, padding: 1, bias: false);
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var y = conv1.call(relu1.call(norm1.call(x)));
        if (conv2 is not null) y = conv2.call(relu2!.call(norm2!.call(y)));
        return _dropRate > 0 ? nn.functional.dropout(y, _dropRate, training) : y;
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var y = g.Module(conv1, g.Module(relu1, g.Module(norm1, x)));
        if (conv2 is not null) y = g.Module(conv2, g.Module(relu2!, g.Module(norm2!, y)));
        return y;
    }
}
