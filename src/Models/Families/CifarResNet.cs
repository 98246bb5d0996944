using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;

namespace Trainer.Models.Families;

/// <summary>How a residual block's shortcut crosses a change of shape (ResNet paper, section 3.3).</summary>
public enum Shortcut
{
    /// <summary>Option A: zero-padded identity, no parameters (the paper's CIFAR choice).</summary>
    A,
    /// <summary>Option B: 1x1 projection with BatchNorm where the shape changes, identity elsewhere.</summary>
    B,
    /// <summary>No shortcut at all: the "plain" network of the degradation experiments.</summary>
    None,
}

/// <summary>
/// The CIFAR ResNets of He et al. (2015), section 4.2: a 3x3 stem, three stages of n basic blocks
/// with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps, global average pooling and a linear
/// classifier: 6n+2 weighted layers. With <see cref="Shortcut.None"/> it is the matching plain net.
/// </summary>
public sealed class CifarResNet : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Sequential layer1, layer2, layer3;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Linear fc;

    public CifarResNet(int blocksPerStage, int numClasses = 10, Shortcut shortcut = Shortcut.A)
        : base(nameof(CifarResNet))
    {
        conv1 = Convs.Conv3x3(3, 16);
        bn1 = nn.BatchNorm2d(16);
        layer1 = Stage(16, 16, blocksPerStage, stride: 1, shortcut);
        layer2 = Stage(16, 32, blocksPerStage, stride: 2, shortcut);
        layer3 = Stage(32, 64, blocksPerStage, stride: 2, shortcut);
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(64, numClasses);
        RegisterComponents();
        HeInit.Apply(this);
    }

    /// <summary>Depth in the paper's sense (6n+2) to blocks per stage n.</summary>
    public static int BlocksForDepth(int depth) =>
        (depth - 2) % 6 == 0 && depth >= 8 ? (depth - 2) / 6 : throw new ArgumentException($"CIFAR ResNet depth must be 6n+2, got {depth}");

    static Sequential Stage(long inChannels, long outChannels, int blocks, long stride, Shortcut shortcut)
    {
        var stage = nn.Sequential();
        for (int i = 0; i < blocks; i++)
            stage.append(i.ToString(), new BasicBlock(i == 0 ? inChannels : outChannels, outChannels, i == 0 ? stride : 1, shortcut));
        return stage;
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.relu(bn1.forward(conv1.forward(x)));
        y = layer3.forward(layer2.forward(layer1.forward(y)));
        y = avgpool.forward(y).flatten(1);
        return fc.forward(y).MoveToOuterDisposeScope();
    }
}

/// <summary>Two 3x3 convolutions with BatchNorm; ReLU after the addition (the original ResNet block).</summary>
public sealed class BasicBlock : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv1, conv2;
    readonly BatchNorm2d bn1, bn2;
    readonly nn.Module<Tensor, Tensor>? downsample;
    readonly bool residual;

    public BasicBlock(long inChannels, long outChannels, long stride, Shortcut shortcut) : base(nameof(BasicBlock))
    {
        conv1 = Convs.Conv3x3(inChannels, outChannels, stride);
        bn1 = nn.BatchNorm2d(outChannels);
        conv2 = Convs.Conv3x3(outChannels, outChannels);
        bn2 = nn.BatchNorm2d(outChannels);
        residual = shortcut != Shortcut.None;
        bool reshapes = stride != 1 || inChannels != outChannels;
        if (residual && reshapes)
        {
            downsample = shortcut == Shortcut.A
                ? new ZeroPadShortcut(inChannels, outChannels, stride)
                : nn.Sequential(Convs.Conv1x1(inChannels, outChannels, stride), nn.BatchNorm2d(outChannels));
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var y = nn.functional.relu(bn1.forward(conv1.forward(x)));
        y = bn2.forward(conv2.forward(y));
        if (residual) y = y + (downsample is null ? x : downsample.forward(x));
        return nn.functional.relu(y);
    }
}
