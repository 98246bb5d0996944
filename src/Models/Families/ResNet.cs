using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// The ImageNet ResNets of He et al. (2015) as torchvision builds them (state_dict keys and shapes
/// equal torchvision's): a 7x7 stride-2 stem and 3x3 max pool, four stages of basic or bottleneck
/// blocks with 64, 128, 256, 512 planes, global average pooling, a linear classifier. Groups and
/// width per group give ResNeXt and Wide ResNet; <c>plain</c> drops every shortcut (the paper's
/// plain-18/34); <c>squeezeExcite</c> adds an SE block (reduction 16) to every residual block
/// (SE-ResNet, SE-ResNeXt of Hu et al. 2018).
/// </summary>
internal sealed class ResNet : ClassifierModel
{
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly MaxPool2d maxpool;
    readonly Sequential layer1, layer2, layer3, layer4;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Linear fc;

    /// <summary>A ResNet of basic blocks (resnet18/34, plain18/34).</summary>
    public static ResNet Basic(int[] depths, int numClasses, bool plain = false, bool squeezeExcite = false) =>
        new(depths, numClasses, bottleneck: false, plain, groups: 1, widthPerGroup: 64, squeezeExcite);

    /// <summary>A ResNet of bottleneck blocks (resnet50+, resnext, wide_resnet).</summary>
    public static ResNet Bottlenecked(int[] depths, int numClasses, int groups = 1, int widthPerGroup = 64, bool squeezeExcite = false) =>
        new(depths, numClasses, bottleneck: true, plain: false, groups, widthPerGroup, squeezeExcite);

    ResNet(int[] depths, int numClasses, bool bottleneck, bool plain, int groups, int widthPerGroup, bool squeezeExcite) : base(nameof(ResNet))
    {
        conv1 = nn.Conv2d(3, 64, kernel_size: 7, stride: 2, padding: 3, bias: false);
        bn1 = nn.BatchNorm2d(64);
        maxpool = nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1);
        long channels = 64;
        Sequential Stage(long planes, int blocks, long stride)
        {
            var stage = nn.Sequential();
            for (int i = 0; i < blocks; i++)
            {
                long s = i == 0 ? stride : 1;
                nn.Module<Tensor, Tensor> block = bottleneck
                    ? new Bottleneck(channels, planes, s, groups, widthPerGroup, squeezeExcite)
                    : new BasicBlock(channels, planes, s, plain ? Shortcut.None : Shortcut.B, squeezeExcite);
                stage.append(i.ToString(), block);
                channels = bottleneck ? planes * Bottleneck.Expansion : planes;
            }
            return stage;
        }
        layer1 = Stage(64, depths[0], 1);
        layer2 = Stage(128, depths[1], 2);
        layer3 = Stage(256, depths[2], 2);
        layer4 = Stage(512, depths[3], 2);
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(channels, numClasses);
        RegisterComponents();
        HeInit.Apply(this);
    }

    public override Linear Head => fc;

    public override IReadOnlyList<nn.Module[]> Stages => [[conv1, bn1], [layer1], [layer2], [layer3], [layer4]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = maxpool.call(nn.functional.relu(bn1.call(conv1.call(x))));
        y = layer4.call(layer3.call(layer2.call(layer1.call(y))));
        return avgpool.call(y).flatten(1).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Module(maxpool, g.Relu(g.Module(bn1, g.Module(conv1, x))));
        y = g.Module(layer4, g.Module(layer3, g.Module(layer2, g.Module(layer1, y))));
        return g.Flatten(g.Module(avgpool, y));
    }
}
