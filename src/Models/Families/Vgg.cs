using TorchSharp.Modules;
using Trainer.Models.Layers;
using static TorchSharp.torch;
using Trainer.Models.Onnx;

namespace Trainer.Models.Families;

/// <summary>
/// VGG (Simonyan and Zisserman 2015) as torchvision builds it: stacks of 3x3 convolutions (optionally
/// with BatchNorm) separated by 2x2 max pools, a 7x7 adaptive pool and three fully connected layers
/// with dropout. The CIFAR form (with BatchNorm) keeps the convolutions and ends in one linear layer
/// on the 512-d pooled vector.
/// </summary>
internal sealed class Vgg : ClassifierModel
{
    /// <summary>The paper's configurations A, B, D, E (0 = max pool).</summary>
    public static readonly IReadOnlyDictionary<int, int[]> Layers = new Dictionary<int, int[]>
    {
        [11] = [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        [13] = [64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        [16] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
        [19] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0],
    };

    readonly Sequential features, classifier;
    readonly AdaptiveAvgPool2d avgpool;
    readonly bool cifar;

    public Vgg(int depth, bool batchNorm, int numClasses = 1000, bool cifar = false, double dropout = 0.5) : base(nameof(Vgg))
    {
        this.cifar = cifar;
        features = nn.Sequential();
        long channels = 3;
        int index = 0;
        foreach (var width in Layers[depth])
        {
            if (width == 0)
            {
                features.append((index++).ToString(), nn.MaxPool2d(kernel_size: 2, stride: 2));
                continue;
            }
            features.append((index++).ToString(), nn.Conv2d(channels, width, kernel_size: 3, padding: 1));
            if (batchNorm) features.append((index++).ToString(), nn.BatchNorm2d(width));
            features.append((index++).ToString(), nn.ReLU(inplace: true));
            channels = width;
        }
        if (cifar)
        {
            avgpool = nn.AdaptiveAvgPool2d(1);
            classifier = nn.Sequential(("0", nn.Linear(512, numClasses)));
        }
        else
        {
            avgpool = nn.AdaptiveAvgPool2d(7);
            classifier = nn.Sequential(
                ("0", nn.Linear(512 * 7 * 7, 4096)), ("1", nn.ReLU(inplace: true)), ("2", nn.Dropout(dropout)),
                ("3", nn.Linear(4096, 4096)), ("4", nn.ReLU(inplace: true)), ("5", nn.Dropout(dropout)), ("6", nn.Linear(4096, numClasses)));
        }
        RegisterComponents();
        // torchvision's VGG initialisation: Kaiming-normal convolutions, N(0, 0.01) linear layers, zero biases.
        WeightInit.Apply(this, WeightInit.KaimingFanOut, WeightInit.Normal001, zeroLinearBias: true);
    }

    // The head lives inside classifier (as in torchvision's state_dict); a field would register it twice.
    public override Linear Head => (Linear)classifier[cifar ? 0 : 6];

    public override IReadOnlyList<nn.Module[]> Stages => [[features], [classifier]];

    public override Tensor ForwardFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = avgpool.call(features.call(x)).flatten(1);
        if (!cifar) for (int i = 0; i < 6; i++) y = ((nn.Module<Tensor, Tensor>)classifier[i]).call(y);
        return y.MoveToOuterDisposeScope();
    }

    internal override string EmitFeatures(OnnxGraphBuilder g, string x)
    {
        var y = g.Flatten(g.Module(avgpool, g.Module(features, x)));
        if (!cifar) for (int i = 0; i < 6; i++) y = g.Module((nn.Module)classifier[i], y);
        return y;
    }
}
