using Trainer.Data;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;
using static TorchSharp.torch;

namespace Trainer.Recipes.Checkpoints;

/// <summary>Turns a training session into a checkpoint and back: model, optimizer, schedule, progress and RNG.</summary>
internal static class SessionCheckpoint
{
    /// <summary>Writes the session's current state to each path (last and/or best).</summary>
    public static void Save(TrainingSession s, params string[] paths)
    {
        var checkpoint = Capture(s);
        try
        {
            foreach (var path in paths) checkpoint.Save(path);
        }
        finally
        {
            // The model and optimizer tensors are the live ones; only the RNG state is a copy to free.
            foreach (var t in checkpoint.Rng.Values) t.Dispose();
            if (checkpoint.Optimizer.TryGetValue("#steps", out var steps)) steps.Dispose();
        }
    }

    static Checkpoint Capture(TrainingSession s) => new()
    {
        Meta = new CheckpointMeta
        {
            Model = s.Config.Model,
            NumClasses = s.Classes.Count,
            ConfigYaml = ConfigWriter.ToYaml(s.Config),
            Epoch = s.Epoch,
            Step = s.Step,
            ScheduleState = s.Schedule.State(),
            Metrics = s.Metrics,
            BestTop1 = s.BestTop1,
            BestEpoch = s.BestEpoch,
            BestTop5 = s.BestTop5,
            NormalizationMode = s.Normalization.Mode,
            NormalizationMean = s.Normalization.Mean,
            NormalizationStd = s.Normalization.Std,
            NormalizationBgr = s.Normalization.Bgr,
            NormalizationScale = s.Normalization.Scale,
            Classes = s.Classes.ToArray(),
            ClassNames = s.ClassNames is { } names && !names.SequenceEqual(s.Classes) ? names.ToArray() : null,
            ElapsedSeconds = s.ElapsedSeconds,
            LossScale = s.Mixed?.LossScale,
            LossScaleGoodSteps = s.Mixed?.GoodSteps,
            ImagesSeen = s.ImagesSeen,
            EmaUpdates = s.Ema?.Updates,
            InEpoch = s.Progress.MidEpoch ? s.Progress : null,
            LrScale = s.LrScale,
            NanRollbacks = s.NanRollbacks,
        },
        Model = s.Model.state_dict(),
        Optimizer = s.Optimizer.StateDict(),
        Rng = new() { ["torch_cpu"] = get_rng_state() },
        Ema = s.Ema?.Model.state_dict(),
    };

    static string Preview(IReadOnlyList<string> classes) => string.Join(", ", classes.Take(3)) + (classes.Count > 3 ? ", ..." : "");

    /// <summary>Restores a session to where the checkpoint left it.</summary>
    public static void Restore(TrainingSession s, Checkpoint c, string path)
    {
        if (c.Meta.Model != s.Config.Model)
            throw new BadInputException($"checkpoint {path} holds a {c.Meta.Model}, but the config asks for {s.Config.Model}");
        if (!c.Meta.Classes.SequenceEqual(s.Classes))
            throw new BadInputException($"checkpoint {path} was trained on {c.Meta.Classes.Length} classes ({Preview(c.Meta.Classes)}), the data now has {s.Classes.Count} ({Preview(s.Classes)}): resume with the run's own data");
        if (c.Meta.InEpoch is { } progress && progress.Batches > s.BatchesPerEpoch)
            throw new BadInputException($"checkpoint {path} stopped after batch {progress.Batches} of an epoch, but the config now makes {s.BatchesPerEpoch} batches per epoch: resume with the run's data and batch size");
        LoadModel(s.Model, c, path);
        try { s.Optimizer.LoadStateDict(c.Optimizer); }
        catch (InvalidDataException e) { throw new BadInputException($"checkpoint {path}: {e.Message}"); }
        if (s.Ema is not null)
        {
            if (c.Ema is null) throw new BadInputException($"checkpoint {path} holds no weight average, but the config asks for one (regularization.ema_decay)");
            LoadTensors(s.Ema.Model, c.Ema, c.Meta.Model, path);
            s.Ema.Updates = c.Meta.EmaUpdates ?? 0;
        }
        s.ImagesSeen = c.Meta.ImagesSeen;
        s.Schedule.LoadState(c.Meta.ScheduleState);
        if (c.Rng.TryGetValue("torch_cpu", out var rng)) set_rng_state(rng);
        s.Epoch = c.Meta.Epoch;
        s.Step = c.Meta.Step;
        s.BestTop1 = c.Meta.BestTop1;
        s.BestEpoch = c.Meta.BestEpoch;
        s.BestTop5 = c.Meta.BestTop5;
        s.ElapsedSeconds = c.Meta.ElapsedSeconds;
        if (s.Mixed is not null && c.Meta.LossScale is double scale)
        {
            s.Mixed.LossScale = scale;
            s.Mixed.GoodSteps = c.Meta.LossScaleGoodSteps ?? 0;
        }
        s.Metrics = c.Meta.Metrics;
        s.Progress = c.Meta.InEpoch ?? EpochProgress.Start;
        s.LrScale = c.Meta.LrScale;
        s.NanRollbacks = c.Meta.NanRollbacks;
    }

    /// <summary>
    /// A copy of the session's current state in host memory, for going back to it without a file
    /// (train.on_nan: rollback); <see cref="Restore"/> takes it like a loaded checkpoint.
    /// </summary>
    public static Checkpoint Snapshot(TrainingSession s)
    {
        using var scope = NewDisposeScope();
        var live = Capture(s);
        return new Checkpoint
        {
            Meta = live.Meta, Model = Copy(live.Model), Optimizer = Copy(live.Optimizer), Rng = Copy(live.Rng),
            Ema = live.Ema is null ? null : Copy(live.Ema),
        };
    }

    static Dictionary<string, Tensor> Copy(Dictionary<string, Tensor> tensors) =>
        tensors.ToDictionary(t => t.Key, t => t.Value.detach().cpu().clone().DetachFromDisposeScope());

    /// <summary>Copies the checkpoint's weights into a model of the same architecture.</summary>
    public static void LoadModel(nn.Module model, Checkpoint c, string path) => LoadTensors(model, c.Model, c.Meta.Model, path);

    static void LoadTensors(nn.Module model, Dictionary<string, Tensor> tensors, string modelName, string path)
    {
        var expected = model.state_dict();
        var missing = expected.Keys.Except(tensors.Keys).ToList();
        var unexpected = tensors.Keys.Except(expected.Keys).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new BadInputException($"checkpoint {path} does not match model {modelName}: " +
                $"{missing.Count} missing and {unexpected.Count} unexpected tensors (first: {missing.Concat(unexpected).First()})");
        foreach (var (name, tensor) in expected)
        {
            var saved = tensors[name];
            if (!saved.shape.SequenceEqual(tensor.shape))
                throw new BadInputException($"checkpoint {path}: tensor {name} has shape [{string.Join(", ", saved.shape)}], the model expects [{string.Join(", ", tensor.shape)}]");
            using var _ = no_grad();
            tensor.copy_(saved);
        }
    }
}
