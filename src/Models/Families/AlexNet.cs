using TorchSharp.Modules;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// AlexNet (Krizhevsky et al. 2012) in torchvision's single-tower form: five convolutions (64, 192,
/// 384, 256, 256 filters) with three max pools, a 6x6 adaptive pool, and three fully connected
/// layers with dropout 0.5 before the first two. The features are the 4096-d output of fc7.
/// </summary>
internal sealed class AlexNet : ClassifierModel
{
    readonly Sequential features, classifier;
    readonly AdaptiveAvgPool2d avgpool;

    public AlexNet(int numClasses = 1000, double dropout = 0.5) : base(nameof(AlexNet))
    {
        features = nn.Sequential(
            ("0", nn.Conv2d(3, 64, kernel_size: 11, stride: 4, padding: 2)), ("1", nn.ReLU(inplace: true)), ("2", nn.MaxPool2d(kernel_size: 3, stride: 2)),
            ("3", nn.Conv2d(64, 192, kernel_size: 5, padding: 2)), ("4", nn.ReLU(inplace: true)), ("5", nn.MaxPool2d(kernel_size: 3, stride: 2)),
            ("6", nn.Conv2d(192, 384, kernel_size: 3, padding: 1)), ("7", nn.ReLU(inplace: true)),
            ("8", nn.Conv2d(384, 256, kernel_size: 3, padding: 1)), ("9", nn.ReLU(inplace: true)),
            ("10", nn.Conv2d(256, 256, kernel_size: 3, padding: 1)), ("11", nn.ReLU(inplace: true)), ("12", nn.MaxPool2d(kernel_size: 3, stride: 2)));
        avgpool = nn.AdaptiveAvgPool2d(6);
        classifier = nn.Sequential(
            ("0", nn.Dropout(dropout)), ("1", nn.Linear(256 * 6 * 6, 4096)), ("2", nn.ReLU(inplace: true)),
            ("3", nn.Dropout(dropout)), ("4", nn.Linear(4096, 4096)), ("5", nn.ReLU(inplace: true)), ("6", nn.Linear(4096, numClasses)));
        RegisterComponents();
    }

    // The head lives inside classifier (as in torchvision's state_dict); a field would register it twice.
    public override Linear Head => (Linear)classifier[6];

    public override IReadOnlyList<nn.Module[]> Stages => [[features], [classifier]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = avgpool.call(features.call(x)).flatten(1);
        for (int i = 0; i < 6; i++) y = ((nn.Module<Tensor, Tensor>)classifier[i]).call(y);
        return y.MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Flatten(g.Module(avgpool, g.Module(features, x)));
        for (int i = 0; i < 6; i++) y = g.Module((nn.Module)classifier[i], y);
        return y;
    }
}
