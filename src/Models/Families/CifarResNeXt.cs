using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// The CIFAR ResNeXt of Xie et al. (2017), section 5.3: a 3x3 stem with 64 filters, three stages
/// of three bottleneck blocks (29 layers) whose outputs are 256, 512 and 1024 channels, on 32x32,
/// 16x16 and 8x8 maps. Each block's grouped 3x3 convolution has <c>cardinality</c> groups of
/// <c>baseWidth</c> channels in the first stage, doubling per stage (ResNeXt-29 8x64d: 512,
/// 1024, 2048). Built from the same bottleneck block as the ImageNet ResNeXt.
/// </summary>
internal sealed class CifarResNeXt : ClassifierModel
{
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Sequential layer1, layer2, layer3;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Linear fc;

    public CifarResNeXt(int cardinality, int baseWidth, int numClasses = 10, int blocksPerStage = 3) : base(nameof(CifarResNeXt))
    {
        conv1 = Convs.Conv3x3(3, 64);
        bn1 = nn.BatchNorm2d(64);
        long channels = 64;
        Sequential Stage(long planes, long stride)
        {
            var stage = nn.Sequential();
            for (int i = 0; i < blocksPerStage; i++)
            {
                stage.append(i.ToString(), new Bottleneck(channels, planes, i == 0 ? stride : 1, cardinality, baseWidth));
                channels = planes * Bottleneck.Expansion;
            }
            return stage;
        }
        // planes 64/128/256 give outputs 256/512/1024 and group widths baseWidth x 1, 2, 4 (Bottleneck: planes x baseWidth / 64 per group).
        layer1 = Stage(64, 1);
        layer2 = Stage(128, 2);
        layer3 = Stage(256, 2);
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(channels, numClasses);
        RegisterComponents();
        HeInit.Apply(this);
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
