using TorchSharp.Modules;
using Trainer.Models.Onnx;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>
/// The pre-activation basic block of He et al. (2016), "Identity Mappings in Deep Residual
/// Networks": BN, ReLU, 3x3 conv, BN, ReLU, 3x3 conv, and nothing after the addition. Where the
/// shape changes, a 1x1 projection (no BatchNorm) takes the pre-activated input, as the paper's
/// first unit of a stage does.
/// </summary>
internal sealed class PreActBasicBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly BatchNorm2d bn1;
    readonly Conv2d conv1;
    readonly BatchNorm2d bn2;
    readonly Conv2d conv2;
    readonly Conv2d? shortcut;

    public PreActBasicBlock(long inChannels, long outChannels, long stride) : base(nameof(PreActBasicBlock))
    {
        bn1 = nn.BatchNorm2d(inChannels);
        conv1 = Convs.Conv3x3(inChannels, outChannels, stride);
        bn2 = nn.BatchNorm2d(outChannels);
        conv2 = Convs.Conv3x3(outChannels, outChannels);
        if (stride != 1 || inChannels != outChannels) shortcut = Convs.Conv1x1(inChannels, outChannels, stride);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var a = nn.functional.relu(bn1.call(x));
        var identity = shortcut is null ? x : shortcut.call(a);
        var y = conv2.call(nn.functional.relu(bn2.call(conv1.call(a))));
        return (y + identity).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var a = g.Relu(g.Module(bn1, x));
        var identity = shortcut is null ? x : g.Module(shortcut, a);
        var y = g.Module(conv2, g.Relu(g.Module(bn2, g.Module(conv1, a))));
        return g.Add(y, identity);
    }
}

/// <summary>
/// The pre-activation bottleneck (BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1 expanding by 4), stride
/// on the 3x3 convolution as torchvision places it; a 1x1 projection of the pre-activated input
/// where the shape changes.
/// </summary>
internal sealed class PreActBottleneck : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    public const int Expansion = 4;
    readonly BatchNorm2d bn1;
    readonly Conv2d conv1;
    readonly BatchNorm2d bn2;
    readonly Conv2d conv2;
    readonly BatchNorm2d bn3;
    readonly Conv2d conv3;
    readonly Conv2d? shortcut;

    public PreActBottleneck(long inChannels, long planes, long stride) : base(nameof(PreActBottleneck))
    {
        bn1 = nn.BatchNorm2d(inChannels);
        conv1 = Convs.Conv1x1(inChannels, planes);
        bn2 = nn.BatchNorm2d(planes);
        conv2 = Convs.Conv3x3(planes, planes, stride);
        bn3 = nn.BatchNorm2d(planes);
        conv3 = Convs.Conv1x1(planes, planes * Expansion);
        if (stride != 1 || inChannels != planes * Expansion) shortcut = Convs.Conv1x1(inChannels, planes * Expansion, stride);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var a = nn.functional.relu(bn1.call(x));
        var identity = shortcut is null ? x : shortcut.call(a);
        var y = conv1.call(a);
        y = conv2.call(nn.functional.relu(bn2.call(y)));
        y = conv3.call(nn.functional.relu(bn3.call(y)));
        return (y + identity).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var a = g.Relu(g.Module(bn1, x));
        var identity = shortcut is null ? x : g.Module(shortcut, a);
        var y = g.Module(conv1, a);
        y = g.Module(conv2, g.Relu(g.Module(bn2, y)));
        y = g.Module(conv3, g.Relu(g.Module(bn3, y)));
        return g.Add(y, identity);
    }
}
