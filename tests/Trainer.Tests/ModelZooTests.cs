using Trainer.Models;
using Trainer.Models.Layers;
using Trainer.Models.Summary;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

public class ModelZooTests
{
    // torchvision's parameter counts (torchvision.models.<name>().parameters(), 1000 classes).
    [Theory]
    [InlineData("alexnet", 61_100_840)]
    [InlineData("vgg11", 132_863_336)]
    [InlineData("vgg11_bn", 132_868_840)]
    [InlineData("vgg13", 133_047_848)]
    [InlineData("vgg13_bn", 133_053_736)]
    [InlineData("vgg16", 138_357_544)]
    [InlineData("vgg16_bn", 138_365_992)]
    [InlineData("vgg19", 143_667_240)]
    [InlineData("vgg19_bn", 143_678_248)]
    [InlineData("resnet18", 11_689_512)]
    [InlineData("resnet34", 21_797_672)]
    [InlineData("resnet50", 25_557_032)]
    [InlineData("resnet101", 44_549_160)]
    [InlineData("resnet152", 60_192_808)]
    [InlineData("wide_resnet50_2", 68_883_240)]
    [InlineData("wide_resnet101_2", 126_886_696)]
    [InlineData("resnext50_32x4d", 25_028_904)]
    [InlineData("resnext101_32x8d", 88_791_336)]
    [InlineData("mobilenet_v2", 3_504_872)]
    [InlineData("densenet121", 7_978_856)]
    [InlineData("googlenet", 6_624_904)]
    [InlineData("densenet161", 28_681_000)]
    [InlineData("densenet169", 14_149_480)]
    [InlineData("densenet201", 20_013_928)]
    public void Parameter_counts_equal_torchvisions(string name, long expected)
    {
        using var model = ModelRegistry.Create(name);
        Assert.Equal(expected, ModelRegistry.CountParameters(model));
    }

    // torchvision's published multiply-adds (GFLOPS in its model tables) at 3x224x224, within 2%.
    [Theory]
    [InlineData("alexnet", 0.714)]
    [InlineData("vgg16", 15.47)]
    [InlineData("resnet18", 1.81)]
    [InlineData("resnet50", 4.09)]
    [InlineData("resnext50_32x4d", 4.23)]
    [InlineData("mobilenet_v2", 0.30)]
    [InlineData("densenet121", 2.83)]
    [InlineData("googlenet", 1.50)]
    public void Multiply_accumulates_match_torchvisions_published_figures(string name, double giga)
    {
        using var model = ModelRegistry.Create(name);
        var cost = CostSummary.Measure(name, model, [3, 224, 224]);
        Assert.InRange(cost.Macs / 1e9, giga * 0.98, giga * 1.02);
    }

    [Fact]
    public void Alexnet_reproduces_the_lecture_table_on_227x227()
    {
        using var model = ModelRegistry.Create("alexnet");
        var cost = CostSummary.Measure("alexnet", model, [3, 227, 227]);
        var conv1 = cost.Layers.Single(l => l.Name == "features.0");
        Assert.Equal([64L, 56, 56], conv1.OutputShape);
        Assert.Equal(784 * 1024, conv1.OutputBytes);            // 200,704 values x 4 bytes = 784 KB
        Assert.Equal(23_296, conv1.Params);
        Assert.Equal(72_855_552, conv1.Macs);
        var pool1 = cost.Layers.Single(l => l.Name == "features.2");
        Assert.Equal([64L, 27, 27], pool1.OutputShape);
        Assert.Equal(182.25, pool1.OutputBytes / 1024.0);
        Assert.Equal(419_904, pool1.Macs);
        var fc6 = cost.Layers.Single(l => l.Name == "classifier.1");
        // 9216 x 4096 weights + 4096 biases (37,752,832; a study note's 37,748,736 + 4,096 sum is off), 9216 x 4096 MACs.
        Assert.Equal(9216L * 4096 + 4096, fc6.Params);
        Assert.Equal(37_752_832, fc6.Params);
        Assert.Equal(37_748_736, fc6.Macs);
    }

    [Fact]
    public void A_basic_block_costs_18_hwc2_and_a_bottleneck_17_hwc2()
    {
        const long c = 64, h = 56, w = 56;
        using var basic = new BasicBlock(c, c, 1, Shortcut.A);
        using var bottleneck = new Bottleneck(4 * c, c, 1);
        long basicMacs = CostSummary.Measure("basic", basic, [c, h, w]).Layers.Where(l => l.Type == "Conv2d").Sum(l => l.Macs);
        long bottleneckMacs = CostSummary.Measure("bottleneck", bottleneck, [4 * c, h, w]).Layers.Where(l => l.Type == "Conv2d").Sum(l => l.Macs);
        Assert.Equal(18 * h * w * c * c, basicMacs);
        Assert.Equal(17 * h * w * c * c, bottleneckMacs);
    }

    [Fact]
    public void Every_registered_model_runs_forward_on_its_smallest_input_and_gives_finite_logits()
    {
        foreach (var entry in ModelRegistry.All)
        {
            if (entry.Name == "resnet1202") continue; // same code as resnet20..110, 19M parameters: covered by ModelTests
            using var model = entry.Create(new ModelOptions(NumClasses: 7));
            model.eval();
            long side = entry.Name == "alexnet" ? 63 : 32;   // AlexNet's stride-4 stem and three pools need 63 pixels
            using var _ = no_grad();
            using var x = randn(1, 3, side, side);
            using var y = model.call(x);
            Assert.Equal([1L, 7], y.shape);
            Assert.True(y.isfinite().all().item<bool>(), $"{entry.Name} gives non-finite logits");
        }
    }

    [Fact]
    public void Every_model_exposes_features_head_and_stages_and_its_head_can_be_reset()
    {
        using var model = ModelRegistry.Create("resnet18");
        Assert.Equal(5, model.Stages.Count);
        Assert.Equal(512, model.Head.in_features);
        model.ResetHead(37);
        Assert.Equal(37, model.Head.out_features);
        Assert.Contains(model.named_parameters(), p => p.name == "fc.weight" && p.parameter.shape[0] == 37);
        model.eval();
        using var _ = no_grad();
        using var x = randn(2, 3, 64, 64);
        using var features = model.ForwardFeatures(x);
        Assert.Equal([2L, 512], features.shape);
        using var logits = model.call(x);
        Assert.Equal([2L, 37], logits.shape);
    }

    // MobileNetV1 paper, Tables 6 and 7: width multiplier and resolution against millions of
    // mult-adds and parameters (1.0-224: 569M, 4.2M; 0.75: 325M, 2.6M; 0.5: 149M, 1.3M;
    // 0.25: 41M, 0.5M; 192: 418M; 160: 290M; 128: 186M).
    [Theory]
    [InlineData(1.0, 224, 569, 4.2)]
    [InlineData(0.75, 224, 325, 2.6)]
    [InlineData(0.5, 224, 149, 1.3)]
    [InlineData(0.25, 224, 41, 0.5)]
    [InlineData(1.0, 192, 418, 4.2)]
    [InlineData(1.0, 160, 290, 4.2)]
    [InlineData(1.0, 128, 186, 4.2)]
    public void Mobilenet_v1_width_and_resolution_match_the_papers_tables(double width, int resolution, double megaMacs, double megaParams)
    {
        using var model = ModelRegistry.Create("mobilenet_v1", new ModelOptions(Width: width));
        var cost = CostSummary.Measure("mobilenet_v1", model, [3, resolution, resolution]);
        Assert.InRange(cost.Macs / 1e6, megaMacs * 0.99, megaMacs * 1.01);
        Assert.Equal(megaParams, Math.Round(cost.Params / 1e6, 1));
    }

    [Fact]
    public void A_depthwise_separable_layer_costs_1_over_n_plus_1_over_k2_of_a_standard_one()
    {
        const long m = 32, n = 64, d = 28, k = 3;
        using var standard = nn.Conv2d(m, n, kernel_size: k, padding: 1, bias: false);
        using var separable = nn.Sequential(
            nn.Conv2d(m, m, kernel_size: k, padding: 1, groups: m, bias: false),
            nn.Conv2d(m, n, kernel_size: 1, bias: false));
        double standardMacs = CostSummary.Measure("standard", standard, [m, d, d]).Macs;
        double separableMacs = CostSummary.Measure("separable", separable, [m, d, d]).Macs;
        Assert.Equal(d * d * m * n * k * k, (long)standardMacs);
        Assert.Equal(1.0 / n + 1.0 / (k * k), separableMacs / standardMacs, 12);
    }

    // The DenseNet paper's Table 2: DenseNet (L=40, k=12) 1.0M, DenseNet-BC (L=100, k=12) 0.8M, (L=250, k=24) 15.3M.
    [Theory]
    [InlineData("densenet40_12", 1.0)]
    [InlineData("densenet_bc_100_12", 0.8)]
    [InlineData("densenet_bc_250_24", 15.3)]
    public void Cifar_densenets_have_the_papers_parameter_counts(string name, double millions)
    {
        using var model = ModelRegistry.Create(name);
        Assert.Equal(millions, Math.Round(ModelRegistry.CountParameters(model) / 1e6, 1));
    }

    [Fact]
    public void Googlenet_auxiliary_classifiers_run_only_in_training_and_add_torchvisions_parameters()
    {
        using var model = ModelRegistry.Create("googlenet", new ModelOptions(Aux: true));
        // torchvision's googlenet(aux_logits=True) has 13,004,888 parameters, 6,624,904 without.
        Assert.Equal(13_004_888, ModelRegistry.CountParameters(model));
        using var x = randn(2, 3, 96, 96);
        model.train();
        using (var y = model.call(x))
        {
            Assert.Equal(2, model.AuxiliaryLogits.Count);
            Assert.All(model.AuxiliaryLogits, a => Assert.Equal([2L, 1000], a.shape));
        }
        model.eval();
        using (no_grad())
        using (var y = model.call(x))
            Assert.Empty(model.AuxiliaryLogits);
    }

    // The lecture's Inception example on 28x28x256: a naive module (128 1x1, 192 3x3, 96 5x5, 3x3 pool)
    // costs 854M multiply-adds and outputs 672 channels; with 1x1 reductions to 64 (before the 3x3
    // and 5x5, after the pool) it outputs 480 channels. The lecture lists the reduced module's terms
    // (28x28x64x1x1x256 twice, 28x28x128x1x1x256, 28x28x192x3x3x64, 28x28x96x5x5x64,
    // 28x28x64x1x1x256), which sum to 271M; its printed total (358M) does not match its own terms.
    [Fact]
    public void The_naive_and_bottleneck_inception_modules_cost_what_the_lecture_terms_add_up_to()
    {
        using var naive = new LectureInception(reduced: false);
        var naiveCost = CostSummary.Measure("naive", naive, [256, 28, 28]);
        Assert.Equal(854, Math.Round(naiveCost.Layers.Where(l => l.Type == "Conv2d").Sum(l => l.Macs) / 1e6));
        Assert.Equal([672L, 28, 28], OutputShape(naive));

        using var reduced = new LectureInception(reduced: true);
        long convMacs = CostSummary.Measure("reduced", reduced, [256, 28, 28]).Layers.Where(l => l.Type == "Conv2d").Sum(l => l.Macs);
        Assert.Equal(784L * (64 * 256 * 2 + 128 * 256 + 192 * 9 * 64 + 96 * 25 * 64 + 64 * 256), convMacs);
        Assert.Equal(271, Math.Round(convMacs / 1e6));
        Assert.Equal([480L, 28, 28], OutputShape(reduced));
    }

    static long[] OutputShape(nn.Module<Tensor, Tensor> module)
    {
        using var _ = no_grad();
        using var y = module.call(zeros(1, 256, 28, 28));
        return y.shape.Skip(1).ToArray();
    }

    /// <summary>The lecture's module on 256 channels: 128 1x1, 192 3x3, 96 5x5 and a 3x3 pool; reduced = 1x1 to 64 before the 3x3 and 5x5 and after the pool.</summary>
    sealed class LectureInception : nn.Module<Tensor, Tensor>
    {
        readonly TorchSharp.Modules.Conv2d b1, b3, b5;
        readonly TorchSharp.Modules.Conv2d? r3, r5, bp;
        readonly TorchSharp.Modules.MaxPool2d pool;

        public LectureInception(bool reduced) : base("lecture")
        {
            long inner = reduced ? 64 : 256;
            b1 = nn.Conv2d(256, 128, kernel_size: 1, bias: false);
            b3 = nn.Conv2d(inner, 192, kernel_size: 3, padding: 1, bias: false);
            b5 = nn.Conv2d(inner, 96, kernel_size: 5, padding: 2, bias: false);
            pool = nn.MaxPool2d(kernel_size: 3, stride: 1, padding: 1);
            if (reduced)
            {
                r3 = nn.Conv2d(256, 64, kernel_size: 1, bias: false);
                r5 = nn.Conv2d(256, 64, kernel_size: 1, bias: false);
                bp = nn.Conv2d(256, 64, kernel_size: 1, bias: false);
            }
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var three = b3.call(r3 is null ? x : r3.call(x));
            var five = b5.call(r5 is null ? x : r5.call(x));
            var pooled = pool.call(x);
            return cat([b1.call(x), three, five, bp is null ? pooled : bp.call(pooled)], 1);
        }
    }
}
