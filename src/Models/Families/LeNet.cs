using TorchSharp.Modules;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// LeNet-5 (LeCun et al. 1998) on 32x32 inputs: C1 six 5x5 filters (28x28), S2 2x2 average
/// subsampling (14x14), C3 sixteen 5x5 filters (10x10), S4 subsampling (5x5), C5 a 120-unit layer
/// over the 5x5x16 maps, F6 84 units, and the output layer; tanh activations as in the paper.
/// Two simplifications, as modern reproductions make them: C3 connects to all six S2 maps (the
/// paper's sparse table gives it 1,516 parameters, this 2,416), and the output is a linear layer
/// instead of Euclidean RBF units. Three input channels by default (CIFAR); one for digits.
/// The features are F6's 84 values.
/// </summary>
internal sealed class LeNet5 : ClassifierModel
{
    readonly Sequential features, classifier;

    public LeNet5(int numClasses = 10, int inChannels = 3) : base(nameof(LeNet5))
    {
        features = nn.Sequential(
            ("0", nn.Conv2d(inChannels, 6, kernel_size: 5)), ("1", nn.Tanh()), ("2", nn.AvgPool2d(kernel_size: 2, stride: 2)),
            ("3", nn.Conv2d(6, 16, kernel_size: 5)), ("4", nn.Tanh()), ("5", nn.AvgPool2d(kernel_size: 2, stride: 2)));
        classifier = nn.Sequential(
            ("0", nn.Linear(16 * 5 * 5, 120)), ("1", nn.Tanh()),
            ("2", nn.Linear(120, 84)), ("3", nn.Tanh()),
            ("4", nn.Linear(84, numClasses)));
        RegisterComponents();
    }

    // The head lives inside classifier; a field would register it twice.
    public override Linear Head => (Linear)classifier[4];

    public override IReadOnlyList<nn.Module[]> Stages => [[features], [classifier]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        if (x.shape[^1] != 32 || x.shape[^2] != 32)
            throw new ArgumentException($"LeNet-5 takes 32x32 inputs, got {x.shape[^2]}x{x.shape[^1]}");
        using var scope = NewDisposeScope();
        var y = features.call(x).flatten(1);
        for (int i = 0; i < 4; i++) y = ((nn.Module<Tensor, Tensor>)classifier[i]).call(y);
        return y.MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Flatten(g.Module(features, x));
        for (int i = 0; i < 4; i++) y = g.Module((nn.Module)classifier[i], y);
        return y;
    }
}
