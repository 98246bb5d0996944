using Trainer.Models.Families;
using Trainer.Models.Layers;
using static TorchSharp.torch;

namespace Trainer.Models;

/// <summary>Options a config may pass to a model factory; each family reads the ones it has (Dropout and StochasticDepth: null keeps the family's default).</summary>
public sealed record ModelOptions(int? NumClasses = null, Shortcut Shortcut = Shortcut.A, double Width = 1.0, bool Aux = false, double? Dropout = null, double? StochasticDepth = null);

/// <summary>
/// One registered architecture: its name, family, the data it was designed for, how to build it,
/// and, where it differs from its data set's usual size, the input resolution it was designed for
/// (EfficientNet-B1 to B3).
/// </summary>
public sealed record ModelEntry(string Name, string Family, string Dataset, Func<int, ModelOptions, ClassifierModel> Factory, int? Resolution = null)
{
    /// <summary>10 classes for CIFAR-sized models, 1000 for ImageNet-sized ones, unless the options say otherwise.</summary>
    public int DefaultClasses => Dataset == "cifar" ? 10 : 1000;

    public ClassifierModel Create(ModelOptions? options = null)
    {
        var o = options ?? new ModelOptions();
        return Factory(o.NumClasses ?? DefaultClasses, o);
    }

    /// <summary>The input one image of this model's native data set has: 3x32x32 (CIFAR), 3x224x224 (ImageNet), or its own resolution.</summary>
    public long[] NativeInput => Resolution is int r ? [3, r, r] : Dataset == "cifar" ? [3, 32, 32] : [3, 224, 224];
}

/// <summary>The single door to every model: look up by name, list, build.</summary>
public static class ModelRegistry
{
    static readonly Dictionary<string, ModelEntry> Entries = new(StringComparer.Ordinal);

    static ModelRegistry()
    {
        foreach (var depth in new[] { 20, 32, 44, 56, 110, 1202 })
        {
            int n = CifarResNet.BlocksForDepth(depth);
            Register(new ModelEntry($"resnet{depth}", "resnet-cifar", "cifar", (classes, o) => new CifarResNet(n, classes, o.Shortcut, stochasticDepth: o.StochasticDepth ?? 0)));
        }
        foreach (var depth in new[] { 20, 32, 44, 56, 110 })
        {
            int n = CifarResNet.BlocksForDepth(depth);
            Register(new ModelEntry($"plain{depth}", "plain-cifar", "cifar", (classes, o) => new CifarResNet(n, classes, Shortcut.None)));
        }

        Register(new ModelEntry("alexnet", "alexnet", "imagenet", (n, o) => new AlexNet(n, o.Dropout ?? 0.5)));
        foreach (var depth in Vgg.Layers.Keys)
        {
            Register(new ModelEntry($"vgg{depth}", "vgg", "imagenet", (n, o) => new Vgg(depth, batchNorm: false, n, dropout: o.Dropout ?? 0.5)));
            Register(new ModelEntry($"vgg{depth}_bn", "vgg", "imagenet", (n, o) => new Vgg(depth, batchNorm: true, n, dropout: o.Dropout ?? 0.5)));
            Register(new ModelEntry($"vgg{depth}_cifar", "vgg", "cifar", (n, o) => new Vgg(depth, batchNorm: true, n, cifar: true)));
        }

        Register(new ModelEntry("googlenet", "googlenet", "imagenet", (n, o) => new GoogLeNet(n, o.Aux, o.Dropout ?? 0.2)));
        Register(new ModelEntry("inception_v3", "inception", "imagenet", (n, o) => new InceptionV3(n, o.Aux, o.Dropout ?? 0.5), Resolution: 299));
        Register(new ModelEntry("inception_v4", "inception", "imagenet", (n, o) => new InceptionV4(n, o.Dropout ?? 0.2), Resolution: 299));
        Register(new ModelEntry("inception_resnet_v2", "inception", "imagenet", (n, o) => new InceptionResNetV2(n, o.Dropout ?? 0.2), Resolution: 299));
        Register(new ModelEntry("resnet18", "resnet", "imagenet", (n, o) => ResNet.Basic([2, 2, 2, 2], n)));
        Register(new ModelEntry("resnet34", "resnet", "imagenet", (n, o) => ResNet.Basic([3, 4, 6, 3], n)));
        // The ResNet-18 of the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 (CNTK): three blocks in the last stage.
        Register(new ModelEntry("mlnet_resnet18", "resnet", "imagenet", (n, o) => ResNet.Basic([2, 2, 2, 3], n)));
        Register(new ModelEntry("plain18", "plain", "imagenet", (n, o) => ResNet.Basic([2, 2, 2, 2], n, plain: true)));
        Register(new ModelEntry("plain34", "plain", "imagenet", (n, o) => ResNet.Basic([3, 4, 6, 3], n, plain: true)));
        Register(new ModelEntry("resnet50", "resnet", "imagenet", (n, o) => ResNet.Bottlenecked([3, 4, 6, 3], n)));
        Register(new ModelEntry("resnet101", "resnet", "imagenet", (n, o) => ResNet.Bottlenecked([3, 4, 23, 3], n)));
        Register(new ModelEntry("resnet152", "resnet", "imagenet", (n, o) => ResNet.Bottlenecked([3, 8, 36, 3], n)));
        Register(new ModelEntry("wide_resnet50_2", "resnet", "imagenet", (n, o) => ResNet.Bottlenecked([3, 4, 6, 3], n, widthPerGroup: 128)));
        Register(new ModelEntry("wide_resnet101_2", "resnet", "imagenet", (n, o) => ResNet.Bottlenecked([3, 4, 23, 3], n, widthPerGroup: 128)));
        Register(new ModelEntry("resnext50_32x4d", "resnext", "imagenet", (n, o) => ResNet.Bottlenecked([3, 4, 6, 3], n, groups: 32, widthPerGroup: 4)));
        Register(new ModelEntry("resnext101_32x8d", "resnext", "imagenet", (n, o) => ResNet.Bottlenecked([3, 4, 23, 3], n, groups: 32, widthPerGroup: 8)));
        Register(new ModelEntry("densenet121", "densenet", "imagenet", (n, o) => DenseNet.ImageNet(32, [6, 12, 24, 16], 64, n, o.Dropout ?? 0)));
        Register(new ModelEntry("densenet161", "densenet", "imagenet", (n, o) => DenseNet.ImageNet(48, [6, 12, 36, 24], 96, n, o.Dropout ?? 0)));
        Register(new ModelEntry("densenet169", "densenet", "imagenet", (n, o) => DenseNet.ImageNet(32, [6, 12, 32, 32], 64, n, o.Dropout ?? 0)));
        Register(new ModelEntry("densenet201", "densenet", "imagenet", (n, o) => DenseNet.ImageNet(32, [6, 12, 48, 32], 64, n, o.Dropout ?? 0)));
        Register(new ModelEntry("densenet_bc_100_12", "densenet-cifar", "cifar", (n, o) => DenseNet.Cifar(100, 12, bc: true, n, o.Dropout ?? 0)));
        Register(new ModelEntry("densenet_bc_250_24", "densenet-cifar", "cifar", (n, o) => DenseNet.Cifar(250, 24, bc: true, n, o.Dropout ?? 0)));
        Register(new ModelEntry("densenet40_12", "densenet-cifar", "cifar", (n, o) => DenseNet.Cifar(40, 12, bc: false, n, o.Dropout ?? 0)));
        Register(new ModelEntry("mobilenet_v1", "mobilenet", "imagenet", (n, o) => new MobileNetV1(n, o.Width)));
        Register(new ModelEntry("mobilenet_v1_cifar", "mobilenet", "cifar", (n, o) => new MobileNetV1(n, o.Width, cifar: true)));
        Register(new ModelEntry("mobilenet_v2", "mobilenet", "imagenet", (n, o) => new MobileNetV2(n, o.Width, dropout: o.Dropout ?? 0.2)));
        Register(new ModelEntry("mobilenet_v2_cifar", "mobilenet", "cifar", (n, o) => new MobileNetV2(n, o.Width, cifar: true, dropout: o.Dropout ?? 0.2)));

        Register(new ModelEntry("lenet5", "lenet", "cifar", (n, o) => new LeNet5(n)));

        // Pre-activation ResNets: ImageNet depths as torchvision's ResNets; CIFAR 6n+2 (basic) and 9n+2 (bottleneck).
        foreach (var (depth, blocks, bottleneck) in ImageNetResNetDepths)
            Register(new ModelEntry($"preact_resnet{depth}", "preact-resnet", "imagenet", (n, o) => PreActResNet.ImageNet(blocks, bottleneck, n)));
        Register(new ModelEntry("preact_resnet110", "preact-resnet-cifar", "cifar", (n, o) => PreActResNet.Cifar(110, bottleneck: false, n)));
        Register(new ModelEntry("preact_resnet164", "preact-resnet-cifar", "cifar", (n, o) => PreActResNet.Cifar(164, bottleneck: true, n)));
        Register(new ModelEntry("preact_resnet1001", "preact-resnet-cifar", "cifar", (n, o) => PreActResNet.Cifar(1001, bottleneck: true, n)));

        Register(new ModelEntry("resnext29_8x64d", "resnext-cifar", "cifar", (n, o) => new CifarResNeXt(8, 64, n)));
        Register(new ModelEntry("resnext29_16x64d", "resnext-cifar", "cifar", (n, o) => new CifarResNeXt(16, 64, n)));

        // SE-Nets: squeeze-and-excitation (reduction 16) in every residual block.
        foreach (var (depth, blocks, bottleneck) in ImageNetResNetDepths)
            Register(new ModelEntry($"se_resnet{depth}", "se-resnet", "imagenet", (n, o) => bottleneck
                ? ResNet.Bottlenecked(blocks, n, squeezeExcite: true)
                : ResNet.Basic(blocks, n, squeezeExcite: true)));
        Register(new ModelEntry("se_resnext50_32x4d", "se-resnet", "imagenet", (n, o) => ResNet.Bottlenecked([3, 4, 6, 3], n, groups: 32, widthPerGroup: 4, squeezeExcite: true)));
        foreach (var depth in new[] { 20, 56, 110 })
        {
            int blocks = CifarResNet.BlocksForDepth(depth);
            Register(new ModelEntry($"se_resnet{depth}", "se-resnet-cifar", "cifar", (n, o) => new CifarResNet(blocks, n, o.Shortcut, squeezeExcite: true, o.StochasticDepth ?? 0)));
        }

        Register(new ModelEntry("mnasnet1_0", "mnasnet", "imagenet", (n, o) => new MnasNet(n, dropout: o.Dropout ?? 0.2)));
        foreach (var (name, width) in new[] { ("shufflenet_v2_x0_5", 0.5), ("shufflenet_v2_x1_0", 1.0), ("shufflenet_v2_x1_5", 1.5), ("shufflenet_v2_x2_0", 2.0) })
            Register(new ModelEntry(name, "shufflenet", "imagenet", (n, o) => new ShuffleNetV2(n, width)));
        foreach (var (variant, scaling) in EfficientNet.Variants)
            Register(new ModelEntry($"efficientnet_{variant}", "efficientnet", "imagenet", (n, o) => new EfficientNet(variant, n, o.StochasticDepth ?? 0.2, o.Dropout), scaling.Resolution));
    }

    /// <summary>The ImageNet ResNet depths and their blocks per stage (ResNet paper, Table 1).</summary>
    static readonly (int Depth, int[] Blocks, bool Bottleneck)[] ImageNetResNetDepths =
        [(18, [2, 2, 2, 2], false), (34, [3, 4, 6, 3], false), (50, [3, 4, 6, 3], true), (101, [3, 4, 23, 3], true), (152, [3, 8, 36, 3], true)];

    static void Register(ModelEntry entry) => Entries.Add(entry.Name, entry);

    public static IReadOnlyCollection<ModelEntry> All => Entries.Values;

    public static bool Contains(string name) => Entries.ContainsKey(name);

    public static ModelEntry Get(string name) =>
        Entries.TryGetValue(name, out var entry) ? entry : throw new KeyNotFoundException(UnknownMessage(name));

    /// <summary>"unknown model 'resnet21' (closest: resnet20, resnet32, resnet44; see 'trainer models')".</summary>
    public static string UnknownMessage(string name) =>
        $"unknown model '{name}' (closest: {string.Join(", ", Closest(name, 3))}; see 'trainer models')";

    /// <summary>The registered names nearest to <paramref name="name"/> by edit distance.</summary>
    public static IEnumerable<string> Closest(string name, int count) =>
        Entries.Keys.OrderBy(k => EditDistance(name.ToLowerInvariant(), k)).ThenBy(k => k, StringComparer.Ordinal).Take(count);

    static int EditDistance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }

    public static ClassifierModel Create(string name, ModelOptions? options = null) =>
        Get(name).Create(options ?? new ModelOptions());

    public static long CountParameters(nn.Module module) => module.parameters().Sum(p => p.numel());

    /// <summary>
    /// The parameters of <paramref name="entry"/> built with <paramref name="options"/>, counted
    /// without weights: the model is built on libtorch's meta device (shapes only; init functions do
    /// nothing there), 15 times faster than building it for real, almost all of which is random
    /// initialisation. The default device is one process-wide setting: not for concurrent use.
    /// </summary>
    public static long CountParametersWithoutWeights(ModelEntry entry, ModelOptions? options = null)
    {
        var previous = get_default_device();
        set_default_device(META);
        try
        {
            using var model = entry.Create(options);
            return CountParameters(model);
        }
        finally
        {
            set_default_device(previous);
        }
    }
}
