using TorchSharp.Modules;
using Trainer.Models.Onnx;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

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
/// A residual block whose branch ends in BatchNorm. Setting that BatchNorm's scale (gamma) to zero
/// makes the block start as the identity (Goyal et al. 2017, section 5.1; torchvision's
/// zero_init_residual), which eases the start of large-batch training.
/// </summary>
internal interface IResidualBranch
{
    /// <summary>Zeroes the scale of the branch's last BatchNorm (a block without a shortcut keeps its own).</summary>
    void ZeroLastNorm();
}

/// <summary>
/// Two 3x3 convolutions with BatchNorm; ReLU after the addition (the original ResNet block).
/// With <c>squeezeExcite</c> the branch is rescaled by a squeeze-and-excitation block before the
/// addition (SE-ResNet).
/// </summary>
internal sealed class BasicBlock : nn.Module<Tensor, Tensor>, IResidualBranch, IOnnxExportable
{
    // Declared in torchvision's order: the state_dict lists children in declaration order.
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Conv2d conv2;
    readonly BatchNorm2d bn2;
    readonly SqueezeExcitation? se;
    readonly StochasticDepth? stochastic_depth;
    readonly nn.Module<Tensor, Tensor>? downsample;
    readonly bool residual;

    /// <param name="inChannels">channels in.</param>
    /// <param name="outChannels">channels out.</param>
    /// <param name="stride">2 halves the map in the first convolution.</param>
    /// <param name="shortcut">how the identity meets a changed shape (A: zero padding, B: projection).</param>
    /// <param name="squeezeExcite">an SE block on the residual branch.</param>
    /// <param name="dropProbability">Stochastic depth: the chance (in training) that this block's residual branch is skipped for a sample.</param>
    public BasicBlock(long inChannels, long outChannels, long stride, Shortcut shortcut, bool squeezeExcite = false, double dropProbability = 0) : base(nameof(BasicBlock))
    {
        conv1 = Convs.Conv3x3(inChannels, outChannels, stride);
        bn1 = nn.BatchNorm2d(outChannels);
        conv2 = Convs.Conv3x3(outChannels, outChannels);
        bn2 = nn.BatchNorm2d(outChannels);
        if (squeezeExcite) se = SqueezeExcitation.ForResidual(outChannels);
        residual = shortcut != Shortcut.None;
        if (residual && dropProbability > 0) stochastic_depth = new StochasticDepth(dropProbability);
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
        // In place where torchvision is (ReLU, the addition): BatchNorm's backward needs its input, not its output.
        var y = nn.functional.relu(bn1.call(conv1.call(x)), inplace: true);
        y = bn2.call(conv2.call(y));
        if (se is not null) y = se.call(y);
        if (stochastic_depth is not null) y = stochastic_depth.call(y);
        if (residual) y = y.add_(downsample is null ? x : downsample.call(x));
        return nn.functional.relu(y, inplace: true);
    }

    // Stochastic depth is the identity in evaluation.
    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var y = g.Relu(g.Module(bn1, g.Module(conv1, x)));
        y = g.Module(bn2, g.Module(conv2, y));
        if (se is not null) y = g.Module(se, y);
        if (residual) y = g.Add(y, downsample is null ? x : g.Module(downsample, x));
        return g.Relu(y);
    }

    public void ZeroLastNorm()
    {
        if (!residual) return;   // a plain block would pass nothing on
        using var _ = no_grad();
        bn2.weight!.zero_();
    }
}

/// <summary>
/// The bottleneck block (1x1 reduce, 3x3, 1x1 expand by 4) as torchvision builds it: stride on the
/// 3x3 convolution, <c>groups</c> and <c>baseWidth</c> give ResNeXt and Wide ResNet; a 1x1
/// projection shortcut where the shape changes; <c>squeezeExcite</c> adds SE before the addition.
/// </summary>
internal sealed class Bottleneck : nn.Module<Tensor, Tensor>, IResidualBranch, IOnnxExportable
{
    public const int Expansion = 4;
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Conv2d conv2;
    readonly BatchNorm2d bn2;
    readonly Conv2d conv3;
    readonly BatchNorm2d bn3;
    readonly SqueezeExcitation? se;
    readonly Sequential? downsample;

    public Bottleneck(long inChannels, long planes, long stride, long groups = 1, long baseWidth = 64, bool squeezeExcite = false) : base(nameof(Bottleneck))
    {
        long width = planes * baseWidth / 64 * groups;
        conv1 = Convs.Conv1x1(inChannels, width);
        bn1 = nn.BatchNorm2d(width);
        conv2 = nn.Conv2d(width, width, kernel_size: 3, stride: stride, padding: 1, groups: groups, bias: false);
        bn2 = nn.BatchNorm2d(width);
        conv3 = Convs.Conv1x1(width, planes * Expansion);
        bn3 = nn.BatchNorm2d(planes * Expansion);
        if (squeezeExcite) se = SqueezeExcitation.ForResidual(planes * Expansion);
        if (stride != 1 || inChannels != planes * Expansion)
            downsample = nn.Sequential(Convs.Conv1x1(inChannels, planes * Expansion, stride), nn.BatchNorm2d(planes * Expansion));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        // In place where torchvision is (ReLU, the addition): BatchNorm's backward needs its input, not its output.
        var y = nn.functional.relu(bn1.call(conv1.call(x)), inplace: true);
        y = nn.functional.relu(bn2.call(conv2.call(y)), inplace: true);
        y = bn3.call(conv3.call(y));
        if (se is not null) y = se.call(y);
        return nn.functional.relu(y.add_(downsample is null ? x : downsample.call(x)), inplace: true);
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var y = g.Relu(g.Module(bn1, g.Module(conv1, x)));
        y = g.Relu(g.Module(bn2, g.Module(conv2, y)));
        y = g.Module(bn3, g.Module(conv3, y));
        if (se is not null) y = g.Module(se, y);
        return g.Relu(g.Add(y, downsample is null ? x : g.Module(downsample, x)));
    }

    public void ZeroLastNorm()
    {
        using var _ = no_grad();
        bn3.weight!.zero_();
    }
}
