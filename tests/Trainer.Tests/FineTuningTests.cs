using System.Text.Json;
using Trainer.Models;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Config;
using Trainer.Recipes.Optim;
using Trainer.Recipes.Sinks;
using Trainer.Recipes.Transfer;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>Fine-tuning from pretrained weights: what is frozen stays bit-identical, BatchNorm statistics stay put, the optimizer sees the right groups and rates.</summary>
public class FineTuningTests
{
    /// <summary>"Pretrained" resnet20 weights with non-trivial BatchNorm statistics, as safetensors.</summary>
    static string PretrainedResNet20(TempDir dir)
    {
        manual_seed(11);
        using var model = ModelRegistry.Create("resnet20");
        using (no_grad())
            foreach (var (name, buffer) in model.named_buffers())
                if (name.EndsWith("running_mean")) buffer.uniform_(-0.1, 0.1);
                else if (name.EndsWith("running_var")) buffer.uniform_(0.8, 1.2);
        var path = dir["pretrained.safetensors"];
        using (var file = File.Create(path))
            SafeTensors.Write(file, StateDictOrder.Entries(model).Select(e => new KeyValuePair<string, Tensor>(e.Name, e.Tensor)));
        return path;
    }

    static Dictionary<string, Tensor> ReadSafeTensors(string path)
    {
        using var stream = File.OpenRead(path);
        return SafeTensors.Read(stream, path);
    }

    static Cli.Result Train(TempDir dir, string run, string weights, int epochs, params string[] settings)
    {
        string[] common = ["data.subset=64", "train.batch_size=32", "data.val_subset=64", "seed=5", "log.histograms=false", "log.image_grid=false",
                           $"init.weights={weights}", $"train.epochs={epochs}"];
        var r = Cli.Run(["train", "--out", dir[run], .. common.Concat(settings).SelectMany(s => new[] { "--set", s })]);
        Assert.True(r.ExitCode == 0, r.Error);
        return r;
    }

    static bool Same(Tensor a, Tensor b) => a.eq(b).all().item<bool>();

    [Fact]
    public void Head_only_keeps_every_pretrained_tensor_and_batchnorm_statistic_while_the_head_learns()
    {
        using var dir = new TempDir();
        var weights = PretrainedResNet20(dir);
        var run = Train(dir, "head", weights, 1, "finetune.train=head", "init.skip=[]");
        Assert.Contains("init: ", run.Output);
        var pretrained = ReadSafeTensors(weights);
        using var c = Checkpoint.Load(dir["head/checkpoints/last.ckpt"]);
        foreach (var (name, t) in c.Model)
        {
            if (name.StartsWith("fc.")) Assert.False(Same(t, pretrained[name]), $"{name} did not train");
            else Assert.True(Same(t, pretrained[name]), $"{name} changed although frozen");
        }
        // Only the head reached the optimizer.
        Assert.All(c.Optimizer.Keys.Where(k => !k.StartsWith('#')), k => Assert.StartsWith("fc.", k));
        using var summary = JsonDocument.Parse(File.ReadAllText(dir["head/summary.json"]));
        Assert.Equal(64 * 10 + 10, summary.RootElement.GetProperty("trainable_params").GetInt64());
    }

    [Fact]
    public void Last_stage_trains_that_stage_and_the_head_the_rest_stays_bit_identical()
    {
        using var dir = new TempDir();
        var weights = PretrainedResNet20(dir);
        Train(dir, "last", weights, 1, "finetune.train=last_stages", "finetune.stages=1");
        var pretrained = ReadSafeTensors(weights);
        using var c = Checkpoint.Load(dir["last/checkpoints/last.ckpt"]);
        using var model = ModelRegistry.Create("resnet20");
        foreach (var (name, t) in c.Model)
        {
            if (name.StartsWith("fc.")) continue; // a fresh head (init.skip: head)
            bool trained = name.StartsWith("layer3.");
            if (trained && (name.EndsWith(".weight") || name.EndsWith("running_mean"))) Assert.False(Same(t, pretrained[name]), $"{name} did not train");
            if (!trained) Assert.True(Same(t, pretrained[name]), $"{name} changed although frozen");
        }
        long expected = model.named_parameters().Where(p => p.name.StartsWith("layer3.") || p.name.StartsWith("fc.")).Sum(p => p.parameter.numel());
        using var summary = JsonDocument.Parse(File.ReadAllText(dir["last/summary.json"]));
        Assert.Equal(expected, summary.RootElement.GetProperty("trainable_params").GetInt64());
    }

    [Fact]
    public void Frozen_batchnorm_statistics_update_only_when_asked()
    {
        using var dir = new TempDir();
        var weights = PretrainedResNet20(dir);
        Train(dir, "bn", weights, 1, "finetune.train=head", "finetune.update_frozen_bn=true");
        var pretrained = ReadSafeTensors(weights);
        using var c = Checkpoint.Load(dir["bn/checkpoints/last.ckpt"]);
        Assert.True(Same(c.Model["conv1.weight"], pretrained["conv1.weight"]));
        Assert.True(Same(c.Model["layer2.0.bn1.weight"], pretrained["layer2.0.bn1.weight"]));
        Assert.False(Same(c.Model["layer2.0.bn1.running_mean"], pretrained["layer2.0.bn1.running_mean"]), "statistics should follow the batches");
    }

    [Fact]
    public void Two_phases_train_the_head_first_then_everything_at_the_lower_rate_and_resume()
    {
        using var dir = new TempDir();
        var weights = PretrainedResNet20(dir);
        string[] settings = ["finetune.head_epochs=1", "finetune.phase2_lr=0.1", "finetune.backbone_lr=0.5", "schedule.name=constant", "optimizer.lr=0.05"];
        Train(dir, "phased", weights, 1, settings);
        var pretrained = ReadSafeTensors(weights);
        using (var first = Checkpoint.Load(dir["phased/checkpoints/last.ckpt"]))
            Assert.True(Same(first.Model["layer1.0.conv1.weight"], pretrained["layer1.0.conv1.weight"]), "the first phase trains the head only");
        var resumed = Cli.Run("train", "--out", dir["phased"], "--resume", "--set", "train.epochs=2");
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        using (var second = Checkpoint.Load(dir["phased/checkpoints/last.ckpt"]))
            Assert.False(Same(second.Model["layer1.0.conv1.weight"], pretrained["layer1.0.conv1.weight"]), "the second phase trains the backbone");
        var rows = CsvSink.Read(dir["phased/metrics.csv"]);
        Assert.Equal([0.05, 0.005], rows.Select(r => Math.Round(r.Lr, 6)));
    }

    [Fact]
    public void The_optimizer_gets_the_head_at_the_full_rate_and_the_trained_stages_at_the_backbone_rate()
    {
        manual_seed(2);
        using var model = ModelRegistry.Create("resnet20");
        var fineTuning = new FineTuning(model, new FinetuneConfig { Train = TrainableLayers.LastStages, Stages = 1, BackboneLr = 0.1 });
        var optimizerConfig = new OptimizerConfig { NoDecayBnBias = true, WeightDecay = 1e-4, Momentum = 0 };
        var groups = fineTuning.Groups(optimizerConfig);
        Assert.Equal(4, groups.Count);
        Assert.All(groups.Where(g => g.LrScale == 1).SelectMany(g => g.Parameters), p => Assert.StartsWith("fc.", p.Name));
        Assert.All(groups.Where(g => g.LrScale == 0.1).SelectMany(g => g.Parameters), p => Assert.StartsWith("layer3.", p.Name));
        Assert.All(groups.Where(g => g.WeightDecay == 0).SelectMany(g => g.Parameters), p => Assert.Equal(1, p.Parameter.dim()));
        Assert.Equal(model.named_parameters().Count(p => p.name.StartsWith("layer3.") || p.name.StartsWith("fc.")), groups.Sum(g => g.Parameters.Count));

        // One SGD step with unit gradients moves the head by lr and the stage by 0.1 lr.
        model.train();
        fineTuning.Apply(0);
        Assert.False(model.get_parameter("conv1.weight")!.requires_grad);
        Assert.True(model.get_parameter("layer3.0.conv1.weight")!.requires_grad);
        using var optimizer = OptimizerFactory.Create(optimizerConfig with { WeightDecay = 0 }, groups, 0.5);
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using var x = randn(4, 3, 32, 32);
        model.call(x).sum().backward();
        foreach (var (_, p) in groups.SelectMany(g => g.Parameters)) p.grad = ones_like(p);
        optimizer.Step();
        foreach (var (name, p) in model.named_parameters())
        {
            double moved = (before[name] - p).abs().max().item<float>();
            double expected = name.StartsWith("fc.") ? 0.5 : name.StartsWith("layer3.") ? 0.05 : 0;
            Assert.True(Math.Abs(moved - expected) < 1e-5, $"{name} moved {moved}, expected {expected}");
        }
        // Frozen BatchNorm layers are in eval mode, the trained stage's in training mode.
        Assert.False(model.named_modules().First(m => m.name == "layer1.0.bn1").module.training);
        Assert.True(model.named_modules().First(m => m.name == "layer3.0.bn1").module.training);
    }

    [Fact]
    public void An_mlp_head_is_reset_as_torchvision_initialises_linear_layers_and_survives_eval_and_export()
    {
        manual_seed(4);
        using var model = ModelRegistry.Create("resnet18", new ModelOptions(NumClasses: 1000));
        model.ResetMlpHead(5, hidden: 64, dropout: 0.3);
        var keys = StateDictOrder.Keys(model).ToList();
        Assert.Contains("head_hidden.0.weight", keys);
        Assert.Equal([64, 512], model.get_parameter("head_hidden.0.weight")!.shape);
        Assert.Equal([5, 64], model.Head.weight!.shape);
        // nn.Linear's init: uniform within 1/sqrt(fan_in).
        Assert.InRange(model.get_parameter("head_hidden.0.weight")!.abs().max().item<float>(), 0.5 / Math.Sqrt(512), 1 / Math.Sqrt(512));
        Assert.InRange(model.Head.weight!.abs().max().item<float>(), 0.5 / Math.Sqrt(64), 1 / Math.Sqrt(64));
        model.eval();
        using var logits = model.call(randn(2, 3, 64, 64));
        Assert.Equal([2, 5], logits.shape);

        using var dir = new TempDir();
        var weights = PretrainedResNet20(dir);
        Train(dir, "mlp", weights, 1, "head.type=mlp", "head.hidden=32");
        var evaluated = Cli.Run("eval", "--checkpoint", dir["mlp/checkpoints/last.ckpt"], "--json");
        Assert.True(evaluated.ExitCode == 0, evaluated.Error);
        Assert.Equal(0, Cli.Run("export", "--checkpoint", dir["mlp/checkpoints/last.ckpt"], "--out", dir["mlp.safetensors"]).ExitCode);
        Assert.Contains("head_hidden.0.weight", ReadSafeTensors(dir["mlp.safetensors"]).Keys);
    }

    public static TheoryData<string, string> BadSettings => new()
    {
        { "init.weights=MISSING", "does not exist" },
        { "model=resnet56", "do not fit model resnet56: missing key 'layer1.3.conv1.weight'" },
        { "finetune.stages=0", "finetune.stages must be above 0" },
        { "finetune.train=middle", "finetune.train" },
        { "head.type=deep", "head.type" },
        { "finetune.phase2_lr=0", "finetune.phase2_lr must be above 0" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void Bad_fine_tuning_settings_are_one_line_and_exit_2(string setting, string expected)
    {
        using var dir = new TempDir();
        var weights = PretrainedResNet20(dir);
        var r = Cli.Run("train", "--out", dir["run"], "--set", $"init.weights={weights}", "--set", setting.Replace("MISSING", dir["nothing.pth"]), "--set", "data.subset=32");
        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.ErrorLines);
        Assert.Contains(expected, r.Error);
        Assert.False(File.Exists(dir["run/checkpoints/last.ckpt"]));
    }
}
