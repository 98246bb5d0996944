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
    [InlineData("mnasnet1_0", 4_383_312)]
    [InlineData("efficientnet_b0", 5_288_548)]
    [InlineData("efficientnet_b1", 7_794_184)]
    [InlineData("efficientnet_b2", 9_109_994)]
    [InlineData("efficientnet_b3", 12_233_232)]
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
    [InlineData("mnasnet1_0", 0.31)]
    [InlineData("efficientnet_b0", 0.39)]
    public void Multiply_accumulates_match_torchvisions_published_figures(string name, double giga) =>
        Multiply_accumulates_match_torchvisions_figure_at_its_resolution(name, 224, giga);

    // EfficientNet's larger members at the evaluation crops torchvision's figures are given for.
    [Theory]
    [InlineData("efficientnet_b1", 240, 0.69)]
    [InlineData("efficientnet_b2", 288, 1.09)]
    [InlineData("efficientnet_b3", 300, 1.83)]
    public void Multiply_accumulates_match_torchvisions_figure_at_its_resolution(string name, int resolution, double giga)
    {
        using var model = ModelRegistry.Create(name);
        var cost = CostSummary.Measure(name, model, [3, resolution, resolution]);
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
        manual_seed(0);   // the same weights and inputs whichever tests ran before
        foreach (var entry in ModelRegistry.All)
        {
            if (entry.Name == "resnet1202") continue; // same code as resnet20..110, 19M parameters: covered by ModelTests
            using var model = entry.Create(new ModelOptions(NumClasses: 7));
            // AlexNet's stride-4 stem and three pools need 63 pixels; the Inception networks' unpadded stems and reductions 75.
            long side = entry.Name switch { "alexnet" => 63, "inception_v3" or "inception_v4" or "inception_resnet_v2" => 75, _ => 32 };
            using var _ = no_grad();
            // Training mode (batch statistics; two images, the least BatchNorm accepts on 1x1 maps).
            model.train();
            using (var y = model.call(randn(2, 3, side, side)))
            {
                Assert.Equal([2L, 7], y.shape);
                Assert.True(y.isfinite().all().item<bool>(), $"{entry.Name} gives non-finite logits in training mode");
            }
            // Inference at batch 1. An untrained 1001-layer pre-activation net is not finite here, as in
            // PyTorch: with unit running variances nothing rescales its 333 additive units.
            model.eval();
            using var x = randn(1, 3, side, side);
            using var logits = model.call(x);
            Assert.Equal([1L, 7], logits.shape);
            if (entry.Name != "preact_resnet1001")
                Assert.True(logits.isfinite().all().item<bool>(), $"{entry.Name} gives non-finite logits");
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

    // Parameter counts the papers report, in millions: pre-activation ResNet-164 (Identity Mappings,
    // Table 3), ResNeXt-29 (ResNeXt, Table 7), SE-ResNet/SE-ResNeXt (SE-Net, Table 2).
    [Theory]
    [InlineData("preact_resnet164", 1.7, 0.05)]
    [InlineData("resnext29_8x64d", 34.4, 0.05)]
    [InlineData("resnext29_16x64d", 68.1, 0.1)]   // 68.155M: the paper appears to truncate
    [InlineData("se_resnet50", 28.1, 0.05)]
    [InlineData("se_resnet101", 49.3, 0.05)]
    [InlineData("se_resnet152", 66.8, 0.05)]
    [InlineData("se_resnext50_32x4d", 27.6, 0.05)]
    public void Parameter_counts_match_the_papers(string name, double millions, double tolerance)
    {
        using var model = ModelRegistry.Create(name);
        Assert.InRange(ModelRegistry.CountParameters(model) / 1e6, millions - tolerance, millions + tolerance);
    }

    [Fact]
    public void Preact_resnet1001_has_the_papers_10_2m_weights_in_its_convolutions_and_classifier()
    {
        // 10,327,706 parameters in all; the paper's 10.2M matches the convolution and classifier
        // weights, without the 0.15M BatchNorm scales and shifts.
        using var model = ModelRegistry.Create("preact_resnet1001");
        long weights = model.named_parameters().Where(p => !p.name.Contains("bn") && !p.name.StartsWith("norm.")).Sum(p => p.parameter.numel());
        Assert.Equal(10.2, Math.Round(weights / 1e6, 1));
        Assert.Equal(10_327_706, ModelRegistry.CountParameters(model));
    }

    [Fact]
    public void Preact_resnet18_has_resnet18s_convolutions_with_batchnorm_moved_in_front()
    {
        // resnet18 has 11,689,512 parameters, 9,600 of them BatchNorm (stem 64, and after every conv
        // and projection). The pre-activation form normalises each block's input instead and adds a
        // final BN on 512 channels: 2 x (4x64 + 64+3x128 + 128+3x256 + 256+3x512 + 512) = 7,808.
        using var preact = ModelRegistry.Create("preact_resnet18");
        Assert.Equal(11_689_512 - 9_600 + 7_808, ModelRegistry.CountParameters(preact));
        Assert.Equal(5, preact.Stages.Count);
    }

    [Fact]
    public void Squeeze_excitation_adds_a_quarter_percent_to_resnet50s_cost()
    {
        // The SE paper: SE-ResNet-50 3.87 GFLOPs vs ResNet-50 3.86 (+0.26%), 28.1M vs 25.6M parameters.
        using var plain = ModelRegistry.Create("resnet50");
        using var se = ModelRegistry.Create("se_resnet50");
        double baseMacs = CostSummary.Measure("resnet50", plain, [3, 224, 224]).Macs;
        double seMacs = CostSummary.Measure("se_resnet50", se, [3, 224, 224]).Macs;
        Assert.InRange((seMacs - baseMacs) / baseMacs, 0.001, 0.005);
        // Per block with C output channels: fc1 C x C/16 + C/16, fc2 C/16 x C + C.
        long Se(long c, int blocks) => blocks * (2 * c * (c / 16) + c / 16 + c);
        Assert.Equal(25_557_032 + Se(256, 3) + Se(512, 4) + Se(1024, 6) + Se(2048, 3), ModelRegistry.CountParameters(se));
    }

    [Fact]
    public void Lenet5_has_the_papers_layer_sizes_on_a_32x32_digit()
    {
        // LeCun et al. 1998: C1 six 28x28 maps, 156 parameters, 122,304 connections (117,600
        // multiply-adds plus 4,704 bias additions); S2 6x14x14; C5 120 units, 48,120 parameters;
        // F6 84 units, 10,164 parameters. C3 here is fully connected (2,416 parameters, not 1,516).
        using var model = new Trainer.Models.Families.LeNet5(numClasses: 10, inChannels: 1);
        var cost = CostSummary.Measure("lenet5", model, [1, 32, 32]);
        var c1 = cost.Layers.Single(l => l.Name == "features.0");
        Assert.Equal([6L, 28, 28], c1.OutputShape);
        Assert.Equal(156, c1.Params);
        Assert.Equal(122_304, c1.Macs + 6 * 28 * 28);
        Assert.Equal([6L, 14, 14], cost.Layers.Single(l => l.Name == "features.2").OutputShape);
        Assert.Equal([16L, 10, 10], cost.Layers.Single(l => l.Name == "features.3").OutputShape);
        Assert.Equal(48_120, cost.Layers.Single(l => l.Name == "classifier.0").Params);
        Assert.Equal(10_164, cost.Layers.Single(l => l.Name == "classifier.2").Params);
        Assert.Equal(61_706, cost.Params);
        Assert.Equal(84, model.Head.in_features);
    }

    [Fact]
    public void Efficientnet_drops_residual_branches_only_in_training()
    {
        var depth = new StochasticDepth(0.5);
        using var x = ones(1000, 4);
        depth.train();
        using (var y = depth.call(x))
        {
            // Each row is kept (scaled by 2) or dropped whole.
            using var rowSums = y.sum(1);
            Assert.True(((rowSums == 0) | (rowSums == 8)).all().item<bool>());
            double kept = (rowSums == 8).to_type(ScalarType.Float32).mean().item<float>();
            Assert.InRange(kept, 0.4, 0.6);
        }
        depth.eval();
        using (var y = depth.call(x)) Assert.True((y == x).all().item<bool>());
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
