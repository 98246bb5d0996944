using System.Reflection;
using Trainer.Data;
using Trainer.Data.Transforms;
using Trainer.Models;

namespace Trainer.Recipes.Config;

/// <summary>config file (or the embedded default) + --set overrides -> a validated <see cref="RunConfig"/>.</summary>
public static class ConfigLoader
{
    /// <summary>The config `trainer train` uses without --config.</summary>
    public const string DefaultConfig = "default.yaml";
    /// <summary>The config `trainer study depth` uses without --config.</summary>
    public const string StudyDefaultConfig = "degradation-smoke.yaml";

    /// <summary>A config from configs/ that is compiled into the binary.</summary>
    public static string EmbeddedYaml(string name = DefaultConfig)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Trainer.Recipes.configs." + name)
            ?? throw new InvalidOperationException($"the embedded config {name} is missing from the build");
        return new StreamReader(stream).ReadToEnd();
    }

    /// <summary>Loads <paramref name="path"/>, or without one the embedded <paramref name="embedded"/> config, and applies the overrides.</summary>
    public static RunConfig Load(string? path, IEnumerable<string> overrides, string embedded = DefaultConfig)
    {
        var tree = path is null ? ConfigTree.Parse(EmbeddedYaml(embedded), embedded == DefaultConfig ? $"<embedded default: configs/{embedded}>" : $"<built-in configs/{embedded}>") : ConfigTree.Load(path);
        return FromTree(tree, overrides);
    }

    public static RunConfig FromYaml(string yaml, string origin, IEnumerable<string>? overrides = null) =>
        FromTree(ConfigTree.Parse(yaml, origin), overrides ?? []);

    static RunConfig FromTree(ConfigTree tree, IEnumerable<string> overrides)
    {
        var list = overrides.ToList();
        foreach (var assignment in list) tree.Set(assignment);
        var origin = list.Count == 0 ? tree.Origin : $"{tree.Origin} with --set {string.Join(" ", list)}";
        var config = ConfigBinder.Bind<RunConfig>(tree, origin);
        Validate(config, origin);
        return config;
    }

    /// <summary>The checks every config passes, from a file or built in code (<see cref="Training"/>); bad input names <paramref name="origin"/>.</summary>
    internal static void Validate(RunConfig c, string origin)
    {
        void Check(bool ok, string message)
        {
            if (!ok) throw new BadInputException($"{origin}: {message}");
        }
        if (c.ModelOptions.Own)
            Check(c.Model.Length > 0 && !ModelRegistry.Contains(c.Model), $"model '{c.Model}' is marked as your own (model_options.own) but {(c.Model.Length == 0 ? "has no name" : "is a registry model's name: choose another")}");
        else Check(ModelRegistry.Contains(c.Model), ModelRegistry.UnknownMessage(c.Model));
        Check(c.ModelOptions.Width > 0 && c.ModelOptions.Width <= 4, "model_options.width must be above 0 and at most 4");
        Check(c.Data.Name is "cifar10" or "cifar100" or "cifar10-sample" or DataConfig.ImageFolder or DataConfig.Own, $"data.name must be cifar10, cifar100, cifar10-sample or imagefolder, got '{c.Data.Name}'");
        Check(c.Data.Name == "cifar10-sample" || c.Data.Root.Length > 0, $"data.root must name the {c.Data.Name} folder");
        Check(c.Data.Subset >= 0, "data.subset must be 0 or more");
        Check(c.Data.ValSubset >= 0, "data.val_subset must be 0 or more");
        Check(c.Data.ValSplit >= 0, "data.val_split must be 0 or more");
        Check(c.Data.Padding >= 0, "data.padding must be 0 or more");
        if (c.Data.Name == DataConfig.Own)
        {
            Check(c.Data.ImageSize >= 8, "data.image_size must be at least 8");
            Check(c.Data.ResizeSize >= c.Data.ImageSize, "data.resize_size must be at least data.image_size");
        }
        if (c.Data.Name == DataConfig.ImageFolder)
        {
            Check(c.Data.ImageSize >= 8, "data.image_size must be at least 8");
            Check(c.Data.ResizeSize >= c.Data.ImageSize, "data.resize_size must be at least data.image_size");
            Check(c.Data.Scale.Length == 2 && c.Data.Scale[0] > 0 && c.Data.Scale[0] <= c.Data.Scale[1] && c.Data.Scale[1] <= 1, "data.scale must be [min, max] with 0 < min <= max <= 1");
            Check(c.Data.Ratio.Length == 2 && c.Data.Ratio[0] > 0 && c.Data.Ratio[0] <= c.Data.Ratio[1], "data.ratio must be [min, max] with 0 < min <= max");
            Check(c.Data.ShortSide.Length == 2 && c.Data.ShortSide[0] >= c.Data.ImageSize && c.Data.ShortSide[0] <= c.Data.ShortSide[1], "data.short_side must be [min, max] with data.image_size <= min <= max");
            Check(c.Data.ColorJitter is >= 0 and < 1, "data.color_jitter must be in [0, 1)");
            Check(c.Data.Lighting >= 0, "data.lighting must be 0 or more");
            Check(c.Data.Workers is >= 0 and <= 64, "data.workers must be between 0 (automatic) and 64");
            Check(c.Data.Normalize == NormalizationMode.Channel, "data.normalize: image folders use channel statistics (ImageNet's); pixel_mean is for CIFAR");
            Check(c.Data.NumClasses >= 0 && c.Data.PerClass >= 0, "data.num_classes and data.per_class must be 0 or more");
        }
        Check(c.Data.Prefetch >= 1, "data.prefetch must be 1 or more");
        Check(c.Train.Epochs > 0 || c.Train.Iterations > 0, "train.epochs or train.iterations must be above 0");
        Check(c.Train.Iterations >= 0, "train.iterations must be 0 or more");
        Check(c.Train.BatchSize > 0, "train.batch_size must be above 0");
        Check(Optim.OptimizerFactory.Names.Contains(c.Optimizer.Name), $"optimizer.name must be {string.Join(", ", Optim.OptimizerFactory.Names)}, got '{c.Optimizer.Name}'");
        Check(c.Optimizer.Lr > 0, "optimizer.lr must be above 0");
        Check(c.Optimizer.Momentum >= 0, "optimizer.momentum must be 0 or more");
        Check(c.Optimizer.WeightDecay >= 0, "optimizer.weight_decay must be 0 or more");
        Check(!c.Optimizer.Nesterov || (c.Optimizer.Momentum > 0 && c.Optimizer.Dampening == 0), "optimizer.nesterov needs momentum above 0 and dampening 0");
        Check(c.Optimizer.Alpha is > 0 and < 1, "optimizer.alpha must be between 0 and 1");
        Check(c.Optimizer.Eps > 0, "optimizer.eps must be above 0");
        Check(c.Optimizer.Betas.Length == 2 && c.Optimizer.Betas.All(b => b is >= 0 and < 1), "optimizer.betas must be [beta1, beta2], each in [0, 1)");
        Check(c.Optimizer.ClipGradNorm >= 0, "optimizer.clip_grad_norm must be 0 or more");
        Check(c.Optimizer.ReferenceBatch >= 0, "optimizer.reference_batch must be 0 or more");
        Check(Schedules.ScheduleFactory.Names.Contains(c.Schedule.Name), $"schedule.name must be {string.Join(", ", Schedules.ScheduleFactory.Names)}, got '{c.Schedule.Name}'");
        Check(c.Schedule.Factor > 0 && c.Schedule.Factor < 1, "schedule.factor must be between 0 and 1");
        Check(c.Schedule.Power > 0, "schedule.power must be above 0");
        Check(c.Schedule.MinLr >= 0, "schedule.min_lr must be 0 or more");
        Check(c.Schedule.Monitor is "val_loss" or "val_top1" or "val_top5" or "train_loss", $"schedule.monitor must be val_loss, val_top1, val_top5 or train_loss, got '{c.Schedule.Monitor}'");
        Check(c.Schedule.Patience >= 0 && c.Schedule.Cooldown >= 0, "schedule.patience and schedule.cooldown must be 0 or more");
        Check(c.Schedule.StepSize > 0, "schedule.step_size must be above 0");
        Check(c.Schedule.Milestones.All(m => m > 0), "schedule.milestones must be positive");
        Check(c.Schedule.WarmupIterations >= 0 && c.Schedule.WarmupEpochs >= 0 && c.Schedule.WarmupLr >= 0, "schedule.warmup_iterations, warmup_epochs and warmup_lr must be 0 or more");
        Check(c.Schedule.WarmupUntilError is >= 0 and < 1, "schedule.warmup_until_error must be in [0, 1)");
        Check(c.Regularization.LabelSmoothing is >= 0 and < 1, "regularization.label_smoothing must be in [0, 1)");
        Check(c.Regularization.MixupAlpha >= 0 && c.Regularization.CutmixAlpha >= 0, "regularization.mixup_alpha and cutmix_alpha must be 0 or more");
        Check(c.Regularization.MixProb is >= 0 and <= 1, "regularization.mix_prob must be in [0, 1]");
        Check(c.Regularization.EmaDecay is >= 0 and < 1, "regularization.ema_decay must be in [0, 1)");
        Check(c.ModelOptions.Dropout is null or (>= 0 and < 1), "model_options.dropout must be in [0, 1)");
        Check(c.ModelOptions.StochasticDepth is null or (>= 0 and < 1), "model_options.stochastic_depth must be in [0, 1)");
        Check((c.Recipe.ReportedTop1Error is null or (>= 0 and <= 1)) && (c.Recipe.ReportedTop5Error is null or (>= 0 and <= 1)), "recipe.reported_top1_error and reported_top5_error are fractions in [0, 1]");
        Check(c.Log.EveryIterations >= 0, "log.every_iterations must be 0 or more");
        Check(c.Study.Depths.Length > 0 && c.Study.Depths.All(d => ModelRegistry.Contains($"plain{d}") && ModelRegistry.Contains($"resnet{d}")),
            $"study.depths must list depths with both a plain and a residual CIFAR net (20, 32, 44, 56, 110), got [{string.Join(", ", c.Study.Depths)}]");
        Check(c.Head.Hidden > 0, "head.hidden must be above 0");
        Check(c.Head.Dropout is >= 0 and < 1, "head.dropout must be in [0, 1)");
        Check(c.Finetune.Stages > 0, "finetune.stages must be above 0");
        Check(c.Finetune.BackboneLr >= 0, "finetune.backbone_lr must be 0 or more");
        Check(c.Finetune.HeadEpochs >= 0, "finetune.head_epochs must be 0 or more");
        Check(c.Finetune.Phase2Lr > 0, "finetune.phase2_lr must be above 0");
        Check(!c.Finetune.Active || c.Train.Precision == Precision.Fp32, "finetune (frozen layers, two phases, backbone_lr) trains in fp32 only; set train.precision: fp32");
        Check(c.Checkpoint.EveryEpochs > 0, "checkpoint.every_epochs must be above 0");
        Check(c.Checkpoint.EverySteps >= 0, "checkpoint.every_steps must be 0 (off) or more");
        Check(c.Train.LossScale > 0, "train.loss_scale must be above 0");
        Check(c.Train.LossScaleGrowthInterval > 0, "train.loss_scale_growth_interval must be above 0");
        Check(c.Train.NanLrFactor is > 0 and < 1, "train.nan_lr_factor must be between 0 and 1");
        Check(c.Train.NanMaxRollbacks >= 0, "train.nan_max_rollbacks must be 0 or more");
        Check(c.Threads >= 0, "threads must be 0 or more");
        Check(Runs.Devices.IsName(c.Device), $"device must be auto, cpu, cuda or cuda:N, got '{c.Device}'");
    }
}
