using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// Pre-activation ResNets (He et al. 2016, "Identity Mappings in Deep Residual Networks"): BN and
/// ReLU move in front of each convolution, the addition is followed by nothing, and one extra
/// BN-ReLU follows the last unit before pooling. Two forms share this class:
/// ImageNet (<see cref="ImageNet"/>: the 7x7 stem and max pool, 64-512 planes, as torchvision's
/// ResNets) and CIFAR (<see cref="Cifar"/>: a 3x3 stem with 16 filters, 16/32/64 planes; basic
/// units give 6n+2 layers such as preact_resnet110, bottleneck units 9n+2 such as 164 and 1001).
/// </summary>
internal sealed class PreActResNet : ClassifierModel
{
    readonly Conv2d conv1;
    readonly MaxPool2d? maxpool;
    readonly Sequential[] layers;
    readonly BatchNorm2d norm;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Linear fc;

    /// <summary>ImageNet form, stages of <paramref name="depths"/> blocks (preact_resnet18: 2,2,2,2 basic; 50: 3,4,6,3 bottleneck).</summary>
    public static PreActResNet ImageNet(int[] depths, bool bottleneck, int numClasses) =>
        new(depths, [64, 128, 256, 512], bottleneck, numClasses, cifar: false);

    /// <summary>CIFAR form of the given depth: 6n+2 with basic units, 9n+2 with bottleneck units.</summary>
    public static PreActResNet Cifar(int depth, bool bottleneck, int numClasses)
    {
        int layersPerBlock = bottleneck ? 9 : 6;
        if ((depth - 2) % layersPerBlock != 0 || depth < layersPerBlock + 2)
            throw new ArgumentException($"a CIFAR pre-activation ResNet with {(bottleneck ? "bottleneck" : "basic")} units has depth {layersPerBlock}n+2, got {depth}");
        int n = (depth - 2) / layersPerBlock;
        return new([n, n, n], [16, 32, 64], bottleneck, numClasses, cifar: true);
    }

    PreActResNet(int[] depths, long[] planes, bool bottleneck, int numClasses, bool cifar) : base(nameof(PreActResNet))
    {
        long channels = cifar ? 16 : 64;
        conv1 = cifar ? Convs.Conv3x3(3, channels) : nn.Conv2d(3, channels, kernel_size: 7, stride: 2, padding: 3, bias: false);
        if (!cifar) maxpool = nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1);
        register_module("conv1", conv1);
        if (maxpool is not null) register_module("maxpool", maxpool);
        layers = new Sequential[depths.Length];
        for (int stage = 0; stage < depths.Length; stage++)
        {
            var blocks = nn.Sequential();
            for (int i = 0; i < depths[stage]; i++)
            {
                long stride = i == 0 && stage > 0 ? 2 : 1;
                blocks.append(i.ToString(), bottleneck
                    ? new PreActBottleneck(channels, planes[stage], stride)
                    : new PreActBasicBlock(channels, planes[stage], stride));
                channels = bottleneck ? planes[stage] * PreActBottleneck.Expansion : planes[stage];
            }
            layers[stage] = blocks;
            register_module($"layer{stage + 1}", blocks);   // layer1.. as in torchvision's ResNets
        }
        norm = nn.BatchNorm2d(channels);
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(channels, numClasses);
        register_module("norm", norm);
        register_module("avgpool", avgpool);
        register_module("fc", fc);
        HeInit.Apply(this);
    }

    public override Linear Head => fc;

    // The final BN-ReLU belongs to the last stage: it normalises that stage's output.
    public override IReadOnlyList<nn.Module[]> Stages =>
        [maxpool is null ? [conv1] : [conv1, maxpool], .. layers[..^1].Select(s => new nn.Module[] { s }), [layers[^1], norm]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = conv1.call(x);
        if (maxpool is not null) y = maxpool.call(y);
        foreach (var stage in layers) y = stage.call(y);
        y = nn.functional.relu(norm.call(y));
        return avgpool.call(y).flatten(1).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Module(conv1, x);
        if (maxpool is not null) y = g.Module(maxpool, y);
        foreach (var stage in layers) y = g.Module(stage, y);
        y = g.Relu(g.Module(norm, y));
        return g.Flatten(g.Module(avgpool, y));
    }
}
