using Trainer.Data;
using Trainer.Data.Transforms;
using Trainer.Models.Families;
using Trainer.Models.Layers;
using Trainer.Recipes.Config;
using Xunit;

namespace Trainer.Tests;

public class ConfigTests
{
    [Fact]
    public void Defaults_are_the_resnet_recipe()
    {
        var c = ConfigLoader.FromYaml("model: resnet20\ndata:\n  name: cifar10-sample\n", "test.yaml");
        Assert.Equal("sgd", c.Optimizer.Name);
        Assert.Equal(0.1, c.Optimizer.Lr);
        Assert.Equal(0.9, c.Optimizer.Momentum);
        Assert.Equal(1e-4, c.Optimizer.WeightDecay);
        Assert.Equal(256, c.Train.BatchSize);
        Assert.Equal("plateau", c.Schedule.Name);
        Assert.Equal(0.1, c.Schedule.Factor);
    }

    [Fact]
    public void The_embedded_default_trains_resnet20_on_the_shipped_sample()
    {
        var c = ConfigLoader.Load(null, []);
        Assert.Equal("resnet20", c.Model);
        Assert.Equal("cifar10-sample", c.Data.Name);
        Assert.Equal(256, c.Train.BatchSize);
        Assert.Equal(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "configs", "default.yaml")), ConfigLoader.EmbeddedYaml());
    }

    [Fact]
    public void The_paper_cifar_config_has_the_papers_schedule()
    {
        var c = ConfigLoader.Load(Path.Combine(TestPaths.RepoRoot, "configs", "resnet20-cifar10.yaml"), []);
        Assert.Equal("resnet20", c.Model);
        Assert.Equal("cifar10", c.Data.Name);
        Assert.Equal(128, c.Train.BatchSize);
        Assert.Equal(64000, c.Train.Iterations);
        Assert.Equal("multistep", c.Schedule.Name);
        Assert.Equal(ScheduleUnit.Iterations, c.Schedule.Unit);
        Assert.Equal([32000, 48000], c.Schedule.Milestones);
        Assert.Equal(Shortcut.A, c.ModelOptions.Shortcut);
    }

    [Fact]
    public void Set_overrides_dotted_keys_of_every_type()
    {
        var c = ConfigLoader.Load(null, ["train.epochs=3", "optimizer.lr=0.05", "schedule.milestones=[10, 20]", "model_options.shortcut=B",
            "data.normalize=pixel_mean", "optimizer.nesterov=true", "model=resnet56"]);
        Assert.Equal(3, c.Train.Epochs);
        Assert.Equal(0.05, c.Optimizer.Lr);
        Assert.Equal([10, 20], c.Schedule.Milestones);
        Assert.Equal(Shortcut.B, c.ModelOptions.Shortcut);
        Assert.Equal(NormalizationMode.PixelMean, c.Data.Normalize);
        Assert.True(c.Optimizer.Nesterov);
        Assert.Equal("resnet56", c.Model);
    }

    [Fact]
    public void The_lr_can_be_scaled_by_batch_over_256()
    {
        Assert.Equal(0.1, ConfigLoader.Load(null, ["train.batch_size=128"]).Optimizer.StartLr(128), 12);
        var scaled = ConfigLoader.Load(null, ["train.batch_size=128", "optimizer.scale_lr_by_batch=true"]);
        Assert.Equal(0.05, scaled.Optimizer.StartLr(scaled.Train.BatchSize), 12);
    }

    [Fact]
    public void The_resolved_config_written_out_reads_back_the_same()
    {
        var c = ConfigLoader.Load(null, ["schedule.milestones=[5, 9]", "data.normalize=pixel_mean"]);
        var yaml = ConfigWriter.ToYaml(c);
        Assert.Contains("batch_size: 256", yaml);
        Assert.Contains("normalize: pixel_mean", yaml);
        Assert.Equal(yaml, ConfigWriter.ToYaml(ConfigLoader.FromYaml(yaml, "resolved.yaml")));
    }

    [Theory]
    [InlineData("train.epoch=3", "unknown key 'train.epoch'")]
    [InlineData("train.epochs=abc", "key 'train.epochs' expects an integer, got 'abc'")]
    [InlineData("optimizer.nesterov=maybe", "key 'optimizer.nesterov' expects true or false")]
    [InlineData("model_options.shortcut=C", "expects one of a, b, none")]
    [InlineData("model=resnet21", "unknown model 'resnet21'")]
    [InlineData("optimizer.lr=-1", "optimizer.lr must be above 0")]
    [InlineData("train=5", "key 'train' must be a mapping")]
    public void Bad_keys_and_values_name_the_key(string assignment, string expected)
    {
        var e = Assert.Throws<BadInputException>(() => ConfigLoader.Load(null, [assignment]));
        Assert.Contains(expected, e.Message);
        Assert.Contains("configs/default.yaml", e.Message);
    }

    [Fact]
    public void A_missing_file_and_broken_yaml_are_named()
    {
        Assert.Contains("nope.yaml", Assert.Throws<BadInputException>(() => ConfigLoader.Load("nope.yaml", [])).Message);
        using var dir = new TempDir();
        File.WriteAllText(dir["broken.yaml"], "model: [resnet20\ntrain: {");
        var e = Assert.Throws<BadInputException>(() => ConfigLoader.Load(dir["broken.yaml"], []));
        Assert.Contains("broken.yaml", e.Message);
        Assert.Contains("not valid YAML", e.Message);
    }

    [Fact]
    public void Optimizer_schedule_regularisation_and_model_options_bind_from_yaml()
    {
        var c = ConfigLoader.FromYaml("""
            model: efficientnet_b0
            model_options:
              dropout: 0.3
              stochastic_depth: null
            optimizer:
              name: rmsprop
              alpha: 0.9
              eps: 0.001
              tf_style: true
              betas: [0.8, 0.99]
              clip_grad_norm: 2.0
              reference_batch: 512
            schedule:
              name: cosine
              unit: iterations
              min_lr: 0.001
              warmup_epochs: 1.5
            regularization:
              label_smoothing: 0.1
              mixup_alpha: 0.2
              cutmix_alpha: 1.0
              mix_prob: 0.5
              ema_decay: 0.9999
            data:
              name: cifar10-sample
            """, "test.yaml");
        Assert.Equal(0.3, c.ModelOptions.Dropout);
        Assert.Null(c.ModelOptions.StochasticDepth);
        Assert.Equal(("rmsprop", 0.9, 0.001, true, 2.0), (c.Optimizer.Name, c.Optimizer.Alpha, c.Optimizer.Eps, c.Optimizer.TfStyle, c.Optimizer.ClipGradNorm));
        Assert.Equal([0.8, 0.99], c.Optimizer.Betas);
        Assert.Equal(0.1 * 128 / 512, c.Optimizer.StartLr(128), 12);
        Assert.Equal(("cosine", ScheduleUnit.Iterations, 0.001, 1.5), (c.Schedule.Name, c.Schedule.Unit, c.Schedule.MinLr, c.Schedule.WarmupEpochs));
        Assert.Equal((0.1, 0.2, 1.0, 0.5, 0.9999), (c.Regularization.LabelSmoothing, c.Regularization.MixupAlpha, c.Regularization.CutmixAlpha, c.Regularization.MixProb, c.Regularization.EmaDecay));
        // Written back and read again, the config is the same.
        Assert.Equal(ConfigWriter.ToYaml(c), ConfigWriter.ToYaml(ConfigLoader.FromYaml(ConfigWriter.ToYaml(c), "written")));
    }

    [Theory]
    [InlineData("optimizer.name=lamb", "optimizer.name must be sgd, rmsprop, adam, adamw")]
    [InlineData("schedule.name=linear", "schedule.name must be plateau")]
    [InlineData("optimizer.alpha=1.5", "optimizer.alpha")]
    [InlineData("regularization.label_smoothing=1", "regularization.label_smoothing")]
    [InlineData("model_options.dropout=abc", "model_options.dropout")]
    [InlineData("regularization.ema_decay=-0.1", "regularization.ema_decay")]
    [InlineData("train.loss_scale=0", "train.loss_scale must be above 0")]
    [InlineData("train.loss_scale_growth_interval=0", "train.loss_scale_growth_interval must be above 0")]
    public void Out_of_range_training_settings_are_bad_input(string assignment, string message)
    {
        var e = Assert.Throws<Trainer.Data.BadInputException>(() => ConfigLoader.Load(null, [assignment]));
        Assert.Contains(message, e.Message);
    }
}
