using Trainer.Models;
using Trainer.Models.Families;
using Trainer.Models.Layers;
using Trainer.Models.Summary;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

public class ModelTests
{
    [Fact]
    public void Inception_v3s_auxiliary_classifier_has_torchvisions_parameters_and_runs_in_training_mode_only()
    {
        manual_seed(0);
        using var model = ModelRegistry.Create("inception_v3", new ModelOptions(NumClasses: 1000, Aux: true));
        // torchvision 0.14's inception_v3(aux_logits=True): 27,161,264; without the head 23,834,568.
        Assert.Equal(27_161_264, ModelRegistry.CountParameters(model));
        using var _ = no_grad();
        using var x = randn(2, 3, 299, 299);
        model.train();
        using (var logits = model.call(x))
        {
            Assert.Equal([2L, 1000], logits.shape);
            var aux = Assert.Single(model.AuxiliaryLogits);
            Assert.Equal([2L, 1000], aux.shape);
        }
        model.eval();
        using (var logits = model.call(x)) Assert.Empty(model.AuxiliaryLogits);
    }

    // Published figures for the TF-slim releases (1000 classes, 299x299): timm's model cards
    // (huggingface.co/timm/inception_v4.tf_in1k and inception_resnet_v2.tf_in1k): 42.7M parameters and
    // 12.3 GMACs, 55.8M and 13.2 GMACs. OpenVINO's model zoo agrees for Inception-v4 (24.584 GFLOPs =
    // 12.29 GMACs). Trainer's counts must round to them (docs/models.md has the exact figures).
    [Theory]
    [InlineData("inception_v4", 42.7, 12.3)]
    [InlineData("inception_resnet_v2", 55.8, 13.2)]
    public void Inception_v4_and_Inception_ResNet_v2_have_the_published_parameters_and_multiply_adds(string name, double millions, double gmacs)
    {
        var entry = ModelRegistry.Get(name);
        Assert.Equal([3L, 299, 299], entry.NativeInput);
        using var model = entry.Create();
        var cost = CostSummary.Measure(name, model, entry.NativeInput);
        Assert.Equal(millions, Math.Round(cost.Params / 1e6, 1));
        Assert.Equal(gmacs, Math.Round(cost.Macs / 1e9, 1));
    }

    [Fact]
    public void Inception_v4s_stem_and_stages_have_the_papers_output_shapes()
    {
        // Figure 3 (stem), figure 9 (the whole network): 299x299x3 in, 35x35x384, 17x17x1024, 8x8x1536.
        using var model = (InceptionV4)ModelRegistry.Create("inception_v4");
        var stem = (TorchSharp.Modules.Sequential)model.Stages[0][0];
        Assert.Equal(
            ["32x149x149", "32x147x147", "64x147x147", "160x73x73", "192x71x71", "384x35x35", "384x35x35", "1024x17x17", "1024x17x17", "1536x8x8", "1536x8x8"],
            ShapesThrough([.. stem.children().Cast<nn.Module<Tensor, Tensor>>(), .. model.Stages.Skip(1).SelectMany(s => s).Cast<nn.Module<Tensor, Tensor>>()]));
    }

    [Fact]
    public void Inception_ResNet_v2s_stages_keep_the_papers_grids_with_the_releases_widths()
    {
        // The paper's grids (35x35, 17x17, 8x8 after Reduction-A and -B); the widths are the released
        // network's (320, 1088, 2080, then 1536), not figure 15's (see the class's comment).
        using var model = (InceptionResNetV2)ModelRegistry.Create("inception_resnet_v2");
        Assert.Equal(
            ["320x35x35", "320x35x35", "1088x17x17", "1088x17x17", "2080x8x8", "2080x8x8", "1536x8x8"],
            ShapesThrough(model.Stages.SelectMany(s => s).Cast<nn.Module<Tensor, Tensor>>().ToList()));
    }

    static List<string> ShapesThrough(IReadOnlyList<nn.Module<Tensor, Tensor>> modules)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var shapes = new List<string>();
        var x = zeros(1, 3, 299, 299);
        foreach (var m in modules)
        {
            m.eval();
            x = m.call(x);
            shapes.Add(string.Join("x", x.shape.Skip(1)));
        }
        return shapes;
    }

    [Fact]
    public void Inception_ResNet_residuals_are_scaled_before_the_addition()
    {
        // Section 3.3: x + s * residual. Without the ReLU the output is linear in s.
        manual_seed(3);
        static ConcatBranches Branches() => new(new BasicConv2d(64, 16, 1), new BasicConv2d(64, 16, 3, padding: 1));
        using var once = new ScaledResidual(1.0, 64, Branches(), 32, relu: false);
        using var scaled = new ScaledResidual(0.2, 64, Branches(), 32, relu: false);
        scaled.load_state_dict(once.state_dict());
        once.eval();
        scaled.eval();
        using var _ = no_grad();
        using var x = randn(1, 64, 8, 8);
        using var full = once.call(x) - x;
        using var fifth = scaled.call(x) - x;
        Assert.True(full.abs().max().item<float>() > 0.1, "the residual branch contributes nothing");
        Assert.True(allclose(fifth, full * 0.2, rtol: 1e-4, atol: 1e-5), "the residual is not scaled by 0.2");
    }

    [Theory]
    // One model of each family: the meta-device count is the count of the model built for real.
    [InlineData("resnet20")] [InlineData("plain20")] [InlineData("vgg11_bn")] [InlineData("googlenet")] [InlineData("resnet50")]
    [InlineData("resnext50_32x4d")] [InlineData("densenet121")] [InlineData("mobilenet_v1")] [InlineData("mobilenet_v2")] [InlineData("lenet5")]
    [InlineData("preact_resnet18")] [InlineData("se_resnet20")] [InlineData("mnasnet1_0")] [InlineData("efficientnet_b0")] [InlineData("mlnet_resnet18")] [InlineData("shufflenet_v2_x1_5")] [InlineData("inception_v3")]
    [InlineData("inception_v4")] [InlineData("inception_resnet_v2")]
    public void Parameters_counted_without_weights_equal_the_built_models_and_leave_the_default_device_alone(string name)
    {
        var entry = ModelRegistry.Get(name);
        long withoutWeights = ModelRegistry.CountParametersWithoutWeights(entry, new ModelOptions(NumClasses: 7));
        using (var built = entry.Create(new ModelOptions(NumClasses: 7)))
        {
            Assert.Equal(ModelRegistry.CountParameters(built), withoutWeights);
            Assert.All(built.parameters(), p => Assert.Equal(TorchSharp.DeviceType.CPU, p.device_type));
        }
        using var after = zeros(2);
        Assert.Equal(TorchSharp.DeviceType.CPU, after.device_type);
    }

    // The ResNet paper's Table 6 reports 0.27M, 0.46M, 0.66M, 0.85M, 1.7M and 19.4M parameters
    // (option A shortcuts add none). Exact counts: stem 448 + 97,216 per block per stage
    // (sum over 16/32/64 filters) minus the first-block corrections, + fc 650.
    [Theory]
    [InlineData("resnet20", 269_722, "0.27")]
    [InlineData("resnet32", 464_154, "0.46")]
    [InlineData("resnet44", 658_586, "0.66")]
    [InlineData("resnet56", 853_018, "0.85")]
    [InlineData("resnet110", 1_727_962, "1.7")]
    [InlineData("resnet1202", 19_421_274, "19.4")]
    public void Cifar_resnets_have_the_papers_parameter_counts(string name, long exact, string paperMillions)
    {
        using var model = ModelRegistry.Create(name);
        long count = ModelRegistry.CountParameters(model);
        Assert.Equal(exact, count);
        int decimals = paperMillions.Contains('.') ? paperMillions.Split('.')[1].Length : 0;
        Assert.Equal(paperMillions, Math.Round(count / 1e6, decimals).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData(20)]
    [InlineData(56)]
    public void Plain_nets_match_the_residual_nets_in_parameters_but_have_no_shortcuts(int depth)
    {
        using var plain = ModelRegistry.Create($"plain{depth}");
        using var residual = ModelRegistry.Create($"resnet{depth}");
        Assert.Equal(ModelRegistry.CountParameters(residual), ModelRegistry.CountParameters(plain));
        Assert.DoesNotContain(plain.named_modules(), m => m.name.Contains("downsample"));
        Assert.Contains(residual.named_modules(), m => m.name.EndsWith("downsample"));
    }

    [Fact]
    public void Option_b_projections_add_two_1x1_convolutions_with_batchnorm()
    {
        using var a = ModelRegistry.Create("resnet20");
        using var b = ModelRegistry.Create("resnet20", new ModelOptions(Shortcut: Shortcut.B));
        // 16->32 and 32->64 projections: weights 512 + 2048, BatchNorm 64 + 128.
        Assert.Equal(512 + 2048 + 64 + 128, ModelRegistry.CountParameters(b) - ModelRegistry.CountParameters(a));
        Assert.Contains(b.state_dict().Keys, k => k == "layer2.0.downsample.0.weight");
    }

    [Fact]
    public void State_dict_keys_read_like_torchvision()
    {
        using var model = ModelRegistry.Create("resnet20");
        var keys = model.state_dict().Keys.ToHashSet();
        Assert.Contains("conv1.weight", keys);
        Assert.Contains("bn1.running_mean", keys);
        Assert.Contains("layer1.0.conv1.weight", keys);
        Assert.Contains("layer3.2.bn2.bias", keys);
        Assert.Contains("fc.weight", keys);
    }

    [Fact]
    public void Forward_gives_one_logit_per_class_and_option_a_shortcut_zero_pads_channels()
    {
        using var model = ModelRegistry.Create("resnet20", new ModelOptions(NumClasses: 100));
        model.eval();
        using var x = randn(2, 3, 32, 32);
        using var y = model.forward(x);
        Assert.Equal([2L, 100], y.shape);

        using var shortcut = new Trainer.Models.Layers.ZeroPadShortcut(16, 32, 2);
        using var input = randn(1, 16, 8, 8);
        using var output = shortcut.forward(input);
        Assert.Equal([1L, 32, 4, 4], output.shape);
        Assert.Equal(0f, output[0, TensorIndex.Slice(0, 8)].abs().sum().item<float>());
        Assert.Equal(0f, output[0, TensorIndex.Slice(24, 32)].abs().sum().item<float>());
        Assert.True(output[0, TensorIndex.Slice(8, 24)].allclose(input[.., .., TensorIndex.Slice(null, null, 2), TensorIndex.Slice(null, null, 2)][0]));
    }

    [Fact]
    public void Convolutions_get_he_initialisation()
    {
        manual_seed(0);
        using var model = ModelRegistry.Create("resnet56");
        var w = model.state_dict()["layer3.0.conv2.weight"];
        // Kaiming normal, fan_out = 64 * 3 * 3: std = sqrt(2 / 576).
        double std = w.std().item<float>();
        Assert.InRange(std, Math.Sqrt(2.0 / 576) * 0.95, Math.Sqrt(2.0 / 576) * 1.05);
        Assert.Equal(1f, model.state_dict()["layer3.0.bn2.weight"].mean().item<float>());
    }
}
