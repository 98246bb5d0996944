using TorchSharp.Modules;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// ShuffleNet V2 (Ma et al. 2018, "ShuffleNet V2: Practical Guidelines for Efficient CNN
/// Architecture Design") in torchvision's form: a 3x3 stride-2 stem (24 channels) and a max pool,
/// three stages of 4, 8 and 4 units, a 1x1 conv (1024 channels; 2048 at 2.0x), global average
/// pooling and a linear classifier. The width multiplier picks the stages' channels (Table 5:
/// 48/96/192 at 0.5x, 116/232/464 at 1.0x, 176/352/704 at 1.5x, 244/488/976 at 2.0x).
/// PyTorch's default initialisation, as torchvision's. State_dict keys equal torchvision's
/// (conv1, stage2-4, conv5, fc).
/// </summary>
internal sealed class ShuffleNetV2 : ClassifierModel
{
    static readonly int[] Repeats = [4, 8, 4];

    /// <summary>The stages' output channels and conv5's for each width multiplier torchvision has.</summary>
    public static int[] Channels(double width) => width switch
    {
        0.5 => [24, 48, 96, 192, 1024],
        1.0 => [24, 116, 232, 464, 1024],
        1.5 => [24, 176, 352, 704, 1024],
        2.0 => [24, 244, 488, 976, 2048],
        _ => throw new ArgumentException($"ShuffleNet V2 comes in widths 0.5, 1.0, 1.5 and 2.0, not {width}"),
    };

    readonly Sequential conv1, stage2, stage3, stage4, conv5;
    readonly MaxPool2d maxpool;
    readonly Linear fc;

    public ShuffleNetV2(int numClasses = 1000, double width = 1.0) : base(nameof(ShuffleNetV2))
    {
        var c = Channels(width);
        conv1 = ConvBnRelu(3, c[0], kernel: 3, stride: 2);
        maxpool = nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1);
        var stages = new Sequential[3];
        for (int s = 0; s < 3; s++)
        {
            stages[s] = nn.Sequential();
            for (int i = 0; i < Repeats[s]; i++)
                stages[s].append(i.ToString(), new ShuffleUnit(i == 0 ? c[s] : c[s + 1], c[s + 1], i == 0 ? 2 : 1));
        }
        (stage2, stage3, stage4) = (stages[0], stages[1], stages[2]);
        conv5 = ConvBnRelu(c[3], c[4], kernel: 1, stride: 1);
        fc = nn.Linear(c[4], numClasses);
        RegisterComponents();
    }

    static Sequential ConvBnRelu(long inChannels, long outChannels, long kernel, long stride) => nn.Sequential(
        ("0", nn.Conv2d(inChannels, outChannels, kernel_size: kernel, stride: stride, padding: kernel / 2, bias: false)),
        ("1", nn.BatchNorm2d(outChannels)), ("2", nn.ReLU(inplace: true)));

    public override Linear Head => fc;

    public override IReadOnlyList<nn.Module[]> Stages => [[conv1, maxpool], [stage2], [stage3], [stage4], [conv5], [fc]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = conv5.call(stage4.call(stage3.call(stage2.call(maxpool.call(conv1.call(x))))));
        return y.mean([2, 3]).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Module(conv5, g.Module(stage4, g.Module(stage3, g.Module(stage2, g.Module(maxpool, g.Module(conv1, x))))));
        return g.Flatten(g.GlobalAveragePool(y));
    }
}

/// <summary>
/// ShuffleNet V2's unit (torchvision's InvertedResidual). Stride 1: the channels split in half,
/// one half passes unchanged, the other goes through 1x1 conv, 3x3 depthwise conv, 1x1 conv; the
/// halves are concatenated and the channels shuffled across the two groups. Stride 2 (down
/// sampling): no split; both branches see the whole input (branch1: 3x3 depthwise stride 2, 1x1
/// conv), doubling the channels.
/// </summary>
internal sealed class ShuffleUnit : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly Sequential branch1, branch2;
    readonly long stride, half;

    public ShuffleUnit(long inChannels, long outChannels, long stride) : base(nameof(ShuffleUnit))
    {
        this.stride = stride;
        half = outChannels / 2;
        branch1 = stride > 1
            ? nn.Sequential(
                ("0", nn.Conv2d(inChannels, inChannels, kernel_size: 3, stride: stride, padding: 1, groups: inChannels, bias: false)),
                ("1", nn.BatchNorm2d(inChannels)),
                ("2", nn.Conv2d(inChannels, half, kernel_size: 1, bias: false)),
                ("3", nn.BatchNorm2d(half)), ("4", nn.ReLU(inplace: true)))
            : nn.Sequential();
        branch2 = nn.Sequential(
            ("0", nn.Conv2d(stride > 1 ? inChannels : half, half, kernel_size: 1, bias: false)),
            ("1", nn.BatchNorm2d(half)), ("2", nn.ReLU(inplace: true)),
            ("3", nn.Conv2d(half, half, kernel_size: 3, stride: stride, padding: 1, groups: half, bias: false)),
            ("4", nn.BatchNorm2d(half)),
            ("5", nn.Conv2d(half, half, kernel_size: 1, bias: false)),
            ("6", nn.BatchNorm2d(half)), ("7", nn.ReLU(inplace: true)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor joined;
        if (stride == 1)
        {
            var halves = x.chunk(2, 1);
            joined = cat([halves[0], branch2.call(halves[1])], 1);
        }
        else joined = cat([branch1.call(x), branch2.call(x)], 1);
        return Shuffle(joined, groups: 2).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        string joined;
        if (stride == 1)
        {
            var first = g.Node("Slice", [x, g.Int64s(0), g.Int64s(half), g.Int64s(1)]);
            var second = g.Node("Slice", [x, g.Int64s(half), g.Int64s(long.MaxValue), g.Int64s(1)]);
            joined = g.Concat([first, g.Module(branch2, second)]);
        }
        else joined = g.Concat([g.Module(branch1, x), g.Module(branch2, x)]);
        // The shuffle with a free batch size: (N, 2, C/2, H*W), swap the two channel axes, back to the joined shape.
        var grouped = g.Node("Reshape", [joined, g.Int64s(0, 2, half, -1)]);
        var swapped = g.Node("Transpose", [grouped], OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3));
        return g.Node("Reshape", [swapped, g.Node("Shape", [joined])]);
    }

    /// <summary>Channel shuffle (ShuffleNet V1): (N, g x k, H, W) viewed as (N, g, k, H, W), transposed to (N, k, g, H, W).</summary>
    static Tensor Shuffle(Tensor x, long groups)
    {
        long n = x.shape[0], channels = x.shape[1], h = x.shape[2], w = x.shape[3];
        return x.reshape(n, groups, channels / groups, h, w).transpose(1, 2).reshape(n, channels, h, w);
    }
}
