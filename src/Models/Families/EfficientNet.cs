using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// EfficientNet-B0 to B3 (Tan and Le 2019) as torchvision builds them. B0 is seven stages of
/// MBConv blocks (1x1 expand, KxK depthwise, squeeze-and-excitation to a quarter of the block's
/// input channels, linear 1x1 projection; SiLU; stochastic depth rising linearly to 0.2 over
/// the blocks) between a 3x3 stride-2 stem and a 1x1 conv to 4x the last stage's channels.
/// Compound scaling: B1-B3 multiply the widths (rounded to multiples of 8) and the depths
/// (rounded up) and take a larger input (240, 260, 300).
/// </summary>
internal sealed class EfficientNet : ClassifierModel
{
    /// <summary>Per stage: expansion, kernel, stride, input channels, output channels, layers (B0).</summary>
    static readonly (int Expand, int Kernel, int Stride, int In, int Out, int Layers)[] B0 =
        [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
         (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)];

    /// <summary>Width and depth multipliers, resolution and dropout of each scaled model (the paper's table; torchvision's values).</summary>
    public static readonly IReadOnlyDictionary<string, (double Width, double Depth, int Resolution, double Dropout)> Variants =
        new Dictionary<string, (double, double, int, double)>
        {
            ["b0"] = (1.0, 1.0, 224, 0.2), ["b1"] = (1.0, 1.1, 240, 0.2), ["b2"] = (1.1, 1.2, 260, 0.3), ["b3"] = (1.2, 1.4, 300, 0.3),
        };

    readonly Sequential features;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Sequential classifier;

    public EfficientNet(string variant, int numClasses = 1000, double stochasticDepth = 0.2, double? dropout = null) : base(nameof(EfficientNet))
    {
        var (width, depth, _, variantDropout) = Variants[variant];
        long Channels(int c) => ConvNormActivation.MakeDivisible(c * width);
        int Repeats(int n) => (int)Math.Ceiling(n * depth);

        features = nn.Sequential(("0", ConvNormActivation.Create(3, Channels(B0[0].In), stride: 2, activation: Activation.SiLU)));
        int totalBlocks = B0.Sum(s => Repeats(s.Layers)), blockIndex = 0;
        for (int s = 0; s < B0.Length; s++)
        {
            var (expand, kernel, stride, input, output, n) = B0[s];
            var stage = nn.Sequential();
            for (int i = 0; i < Repeats(n); i++)
            {
                long inChannels = i == 0 ? Channels(input) : Channels(output);
                double drop = stochasticDepth * blockIndex++ / totalBlocks;
                stage.append(i.ToString(), new MBConv(inChannels, Channels(output), kernel, i == 0 ? stride : 1, expand, drop));
            }
            features.append((s + 1).ToString(), stage);
        }
        long last = Channels(B0[^1].Out);
        features.append((B0.Length + 1).ToString(), ConvNormActivation.Create(last, 4 * last, kernel: 1, activation: Activation.SiLU));
        avgpool = nn.AdaptiveAvgPool2d(1);
        classifier = nn.Sequential(("0", nn.Dropout(dropout ?? variantDropout)), ("1", nn.Linear(4 * last, numClasses)));
        RegisterComponents();
        // torchvision: Kaiming-normal (fan_out) convolutions; linear weights uniform in +-1/sqrt(out_features), zero biases.
        WeightInit.Apply(this, WeightInit.KaimingFanOut, linear: w => { double r = 1 / Math.Sqrt(w.shape[0]); nn.init.uniform_(w, -r, r); }, zeroLinearBias: true);
    }

    public override Linear Head => (Linear)classifier[1];

    public override IReadOnlyList<nn.Module[]> Stages => [.. features.children().Select(m => new nn.Module[] { m }), [classifier]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = avgpool.call(features.call(x)).flatten(1);
        return ((nn.Module<Tensor, Tensor>)classifier[0]).call(y).MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x) => g.Flatten(g.Module(avgpool, g.Module(features, x)));
}

/// <summary>
/// EfficientNet's mobile inverted bottleneck with squeeze-and-excitation, keyed as torchvision's
/// MBConv (block.0 expand if any, then depthwise, SE, projection); the residual branch passes
/// through stochastic depth when the block keeps its shape.
/// </summary>
internal sealed class MBConv : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly Sequential block;
    readonly StochasticDepth stochastic_depth;
    readonly bool residual;

    public MBConv(long inChannels, long outChannels, long kernel, long stride, int expandRatio, double dropProbability) : base(nameof(MBConv))
    {
        long expanded = ConvNormActivation.MakeDivisible(inChannels * (double)expandRatio);
        residual = stride == 1 && inChannels == outChannels;
        block = nn.Sequential();
        int i = 0;
        if (expanded != inChannels) block.append((i++).ToString(), ConvNormActivation.Create(inChannels, expanded, kernel: 1, activation: Activation.SiLU));
        block.append((i++).ToString(), ConvNormActivation.Create(expanded, expanded, kernel: kernel, stride: stride, groups: expanded, activation: Activation.SiLU));
        block.append((i++).ToString(), new SqueezeExcitation(expanded, Math.Max(1, inChannels / 4), Activation.SiLU));
        block.append((i++).ToString(), ConvNormActivation.Create(expanded, outChannels, kernel: 1, activation: Activation.None));
        stochastic_depth = new StochasticDepth(dropProbability);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (!residual) return block.call(x);
        using var scope = NewDisposeScope();
        return (stochastic_depth.call(block.call(x)) + x).MoveToOuterDisposeScope();
    }

    // Stochastic depth is the identity in evaluation.
    public string EmitOnnx(OnnxGraphBuilder g, string x) => residual ? g.Add(g.Module(block, x), x) : g.Module(block, x);
}
