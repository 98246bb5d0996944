using TorchSharp;
using Trainer.Data;
using Trainer.Data.Transforms;
using Trainer.Models;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Config;
using Trainer.Recipes.Distributed;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Optim;
using Trainer.Recipes.Regularization;
using Trainer.Recipes.Schedules;
using Trainer.Recipes.Sinks;
using Trainer.Recipes.Storage;
using Trainer.Recipes.Transfer;
using Trainer.Recipes.Weights;
using static TorchSharp.torch;

namespace Trainer.Recipes.Runs;

/// <summary>A run to resume: its folder, settings on top of its config.yaml, and optionally a config file whose model must be the run's (`trainer train --config F --resume`).</summary>
sealed record ResumeRequest(string OutDir, IReadOnlyList<string> Overrides, string? SameModelAs = null);

/// <summary>
/// Composes a run: config -> data + model + recipe -> engine -> sinks, starting fresh or
/// resuming from the run folder's last checkpoint.
/// </summary>
static class TrainingRun
{
    /// <summary>
    /// Resumes the run of the request from its last checkpoint. <paramref name="stop"/> (Ctrl-C,
    /// SIGTERM) ends it after the step under way with last.ckpt saved and a line saying how to
    /// resume; the session then has <c>Stopped</c> set.
    /// </summary>
    public static TrainingSession Resume(ResumeRequest request, TextWriter output, bool liveProgress, CancellationToken stop = default, RunParts? parts = null)
    {
        parts ??= RunParts.FromConfig;
        var (config, folder) = Prepare(request, parts);
        if (HelperRank(config, folder, resume: true, stop, parts) is { } helper) return helper;
        using var held = RunLock.Acquire(folder.Root);
        return StoppingOnFullDisk(folder, () =>
        {
            var checkpoint = Checkpoint.Load(folder.LastCheckpoint);
            try { RequireUnfinished(config, folder, checkpoint.Meta); }
            catch
            {
                checkpoint.Dispose();
                throw;
            }
            return Run(config, folder, checkpoint, held, output, liveProgress, stop, parts);
        });
    }

    /// <summary>Starts a fresh run of an already resolved config in <paramref name="folder"/>.</summary>
    public static TrainingSession Start(RunConfig config, RunFolder folder, TextWriter output, bool liveProgress, CancellationToken stop = default, RunParts? parts = null)
    {
        parts ??= RunParts.FromConfig;
        if (HelperRank(config, folder, resume: false, stop, parts) is { } helper) return helper;
        using var held = RunLock.Acquire(folder.Root);
        RequireNoRun(folder);
        return StoppingOnFullDisk(folder, () => Run(config, folder, null, held, output, liveProgress, stop, parts));
    }

    /// <summary>
    /// What `trainer train --resume --nproc N` checks before it starts N ranks: the run's config and
    /// checkpoint (as the run itself would), and a global batch that splits evenly over the ranks.
    /// Returns the run folder the ranks will write.
    /// </summary>
    public static string CheckBeforeLaunch(ResumeRequest request, RunParts parts, int ranks)
    {
        var (config, folder) = Prepare(request, parts);
        RequireDivisible(config, ranks);
        RequireUnfinished(config, folder, Checkpoint.ReadMeta(folder.LastCheckpoint));
        return folder.Root;
    }

    /// <summary>The same checks for a fresh run of an already resolved config.</summary>
    public static string CheckBeforeLaunch(RunConfig config, RunFolder folder, int ranks)
    {
        RequireDivisible(config, ranks);
        RequireNoRun(folder);
        return folder.Root;
    }

    /// <summary>The global batch (train.batch_size, as the papers state it) is split evenly over the ranks.</summary>
    public static void RequireDivisible(RunConfig config, int ranks)
    {
        int batch = config.Train.BatchSize;
        if (ranks > 1 && batch % ranks != 0)
            throw new BadInputException($"train.batch_size {batch} (the global batch) does not split evenly over {ranks} ranks: choose a multiple of {ranks}, or another number of ranks");
    }

    /// <summary>
    /// A rank other than 0 trains beside rank 0 and writes nothing: no lock, no files, no console.
    /// A resumed run reads the run folder's last checkpoint, as rank 0 does (on several machines the
    /// run folder must be on a shared file system to resume; docs/distributed.md).
    /// </summary>
    /// <returns>the session of a rank other than 0, trained; null on rank 0 (and in a job of one), which goes on to write the run.</returns>
    static TrainingSession? HelperRank(RunConfig config, RunFolder folder, bool resume, CancellationToken stop, RunParts parts)
    {
        var world = World.Current;
        RequireDivisible(config, world.Size);
        if (world.Rank == 0) return null;
        var checkpoint = resume ? Checkpoint.Load(folder.LastCheckpoint) : null;
        return Run(config, folder, checkpoint, null, TextWriter.Null, false, stop, parts);
    }

    /// <summary>A full disk stops the run with one line: the file, the checkpoint that survived, how to go on.</summary>
    static TrainingSession StoppingOnFullDisk(RunFolder folder, Func<TrainingSession> run)
    {
        try { return run(); }
        catch (Exception e) when (e is DiskFullException || DiskFull.Reason(e) is not null)
        {
            var full = e as DiskFullException ?? new DiskFullException($"a file in {folder.Root}", DiskFull.Reason(e)!);
            throw full.WithAdvice(LastGoodEpoch(folder) is int epoch
                ? $"the last good checkpoint (epoch {epoch}) is intact: free space, then trainer train --out {folder.Root} --resume"
                : $"no checkpoint was written yet: free space, then remove {folder.Root} and start again");
        }
    }

    /// <summary>The epoch of the run's last.ckpt, checked whole; null when there is none that reads.</summary>
    static int? LastGoodEpoch(RunFolder folder)
    {
        try { return File.Exists(folder.LastCheckpoint) ? Checkpoint.ReadMeta(folder.LastCheckpoint).Epoch : null; }
        catch (BadInputException) { return null; }
    }

    static void RequireNoRun(RunFolder folder)
    {
        if (folder.HoldsRun)
            throw new BadInputException($"{folder.Root} already holds a run: add --resume to continue it, or choose another --out");
    }

    /// <summary>
    /// A run whose checkpoint reached its length and whose summary says it ended has nothing left to
    /// do; resuming it is refused with how to extend it. (A run that died after its last checkpoint
    /// but before its summary resumes: it writes its summary and final test.)
    /// </summary>
    static void RequireUnfinished(RunConfig config, RunFolder folder, CheckpointMeta meta)
    {
        var t = config.Train;
        bool done = t.Iterations > 0 ? meta.Step >= t.Iterations : meta.Epoch >= t.Epochs;
        if (!done || !folder.Finished) return;
        throw new BadInputException(t.Iterations > 0
            ? $"{folder.Root} finished (iteration {meta.Step} of {t.Iterations}); to train it longer: trainer train --out {folder.Root} --resume --set train.iterations=M (M above {meta.Step})"
            : $"{folder.Root} finished (epoch {meta.Epoch} of {t.Epochs}); to train it longer: trainer train --out {folder.Root} --resume --set train.epochs=M (M above {meta.Epoch})");
    }

    /// <summary>
    /// Trains in this process; <paramref name="held"/> (rank 0's lock on the run folder) is null on
    /// the other ranks of a data-parallel job, which keep no sinks and write nothing.
    /// </summary>
    static TrainingSession Run(RunConfig config, RunFolder folder, Checkpoint? checkpoint, RunLock? held, TextWriter output, bool liveProgress, CancellationToken stop, RunParts parts)
    {
        using var _ = checkpoint;
        var world = World.Current;
        // Ranks on one machine share its cores: each takes its part unless the config says otherwise.
        if (config.Threads > 0) set_num_threads(config.Threads);
        else if (world.LocalSize > 1) set_num_threads(Math.Max(1, Environment.ProcessorCount / world.LocalSize));
        manual_seed(config.Seed);
        Determinism.Apply(config.Deterministic);
        var device = Devices.Select(config.Device, world.LocalRank);

        var data = parts.Data ?? DataSources.Load(config.Data, config.Seed);
        RunDataCheck.RequireLabelsInRange(data);
        if (data.SkippedImages > 0) output.WriteLine($"left out {data.SkippedImages} unreadable image(s) (data.skip_bad_images)");
        // Pretrained weights bring the input normalisation they were trained with (ONNX preprocessing, an imported checkpoint).
        using var init = checkpoint is null && config.Init.Weights.Length > 0 ? WeightsFile.Read(config.Init.Weights) : null;
        var normalization = checkpoint?.Meta.Normalization ?? init?.Normalization ?? DataSources.Normalization(config.Data, data.Train);
        var model = CreateOn(config, parts, data.Classes.Count, device);
        parts.RequireClassifierFeatures(config, model);
        if (init is not null)
        {
            int loaded = WeightsFit.Load((ClassifierModel)model, init.Tensors, config.Init.Skip, config.Init.Weights, config.Model);
            output.WriteLine($"init: {loaded} tensors from {init.Describe()}; not loaded: {(config.Init.Skip.Length == 0 ? "nothing" : string.Join(", ", config.Init.Skip))}; input {normalization.Describe()}");
        }
        var fineTuning = config.Finetune.Active ? new FineTuning((ClassifierModel)model, config.Finetune) : null;
        double lr = config.Optimizer.StartLr(config.Train.BatchSize);
        using var optimizer = fineTuning is null
            ? OptimizerFactory.Create(config.Optimizer, model, lr)
            : OptimizerFactory.Create(config.Optimizer, fineTuning.Groups(config.Optimizer), lr);
        bool pin = device.type == DeviceType.CUDA;
        var trainLoader = DataSources.TrainLoader(config, data.Train, normalization, pin, world.Rank, world.Size);
        var valLoader = DataSources.EvalLoader(config.Data, data.Validation, normalization, config.Train.BatchSize, pin, world.Rank, world.Size);
        if (parts.Model is not null) RunDataCheck.RequireClassifier(model, config.Model, trainLoader.Source.Layout, data.Classes.Count, device);

        MixedPrecision? mixed = null;
        if (config.Train.Precision != Precision.Fp32)
        {
            mixed = new MixedPrecision(model, CreateOn(config, parts, data.Classes.Count, device), config.Train.Precision, config.Train.LossScale, config.Train.LossScaleGrowthInterval);
        }
        using var ema = config.Regularization.EmaDecay > 0 ? new WeightAverage(model, CreateOn(config, parts, data.Classes.Count, device), config.Regularization.EmaDecay) : null;
        var session = new TrainingSession
        {
            Mixed = mixed,
            Criterion = new Criterion(config.Regularization.LabelSmoothing),
            Mixing = new BatchMixing(config.Regularization, config.Seed) is { Enabled: true } mixing ? mixing : null,
            Ema = ema,
            Config = config, Model = model, Optimizer = optimizer,
            Schedule = WithPhases(config, ScheduleFactory.Create(config.Schedule, lr, RunLength.Of(config.Train, trainLoader.BatchesPerEpoch))),
            FineTuning = fineTuning,
            FrozenRunTrainable = fineTuning?.TrainableParameters(int.MaxValue),
            Device = device, Normalization = normalization, Classes = data.Classes, ClassNames = data.ClassNames,
            TrainSamples = data.Train.Count, ValidationSamples = data.Validation.Count,
            BatchesPerEpoch = trainLoader.BatchesPerEpoch, Parameters = ModelRegistry.CountParameters(model),
            Collective = world,
            Gradients = world.Size > 1 ? new GradientAverager(world, model.parameters().ToList()) : null,
        };
        if (checkpoint is not null) SessionCheckpoint.Restore(session, checkpoint, folder.LastCheckpoint);
        StartTogether(world, session);
        // The twin computes a mixed-precision step; the model itself evaluates (unsynchronised there).
        using var syncBn = config.Train.SyncBn && world.Size > 1 ? SyncBatchNorm.Attach(world, (nn.Module?)mixed?.Twin ?? model) : null;
        var hold = TestHoldSink.FromEnvironment(stop, Console.Error);
        if (held is null)
        {
            // A rank other than 0: the same steps, no sinks.
            using (mixed)
            {
                new TrainingEngine(session, trainLoader, valLoader, hold is null ? [] : [hold], stop).Run();
                RequireSameWeights(world, model);
            }
            return session;
        }

        held.Started = true;
        DurableFile.WriteAllText(folder.Config, ConfigWriter.ToYaml(config));
        output.WriteLine($"run folder: {folder.Root}{(checkpoint is null ? "" : $" ({ResumePoint(session)})")}");

        Func<EvalResult>? test = data.Test is null ? null
            : () => Evaluator.Evaluate(model, DataSources.EvalLoader(config.Data, data.Test, normalization, config.Train.BatchSize, pin), device, config.Train.ChannelsLast);
        var tensorBoard = new TensorBoardSink(folder.Root, () => SampleImages(trainLoader, normalization));
        var checkpoints = new CheckpointSink(folder.LastCheckpoint, folder.BestCheckpoint);
        var sinks = new List<TrainingSink>
        {
            new ConsoleSink(output, liveProgress && config.Log.Progress),
            new CsvSink(folder.Metrics),
            tensorBoard,
            checkpoints,
            new SummarySink(folder.Summary, config.Data.Name, test, data.SkippedImages),
        };
        if (config.Log.EveryIterations > 0) sinks.Insert(3, new IterationLogSink(folder.Iterations, config.Log.EveryIterations, tensorBoard));
        // The caller's own sinks come after the built-in ones (an epoch's rows and checkpoint are written before they hear of it), guarded so a failing one names itself.
        sinks.AddRange(parts.Sinks.Select(sink => new GuardedSink(sink)));
        if (hold is not null) sinks.Add(hold);   // last: the step's rows are written before it holds
        try
        {
            new TrainingEngine(session, trainLoader, valLoader, sinks, stop).Run();
            RequireSameWeights(world, model);
            if (session.Stopped)
                output.WriteLine($"stopped at step {session.Step} (epoch {session.Epoch + 1}, batch {session.Progress.Batches} of {session.BatchesPerEpoch}), " +
                    $"saved in {folder.LastCheckpoint}; resume with: {World.ResumeCommand(folder.Root, world.Size)}");
            else if (data.SkippedImages > 0) output.WriteLine($"note: {data.SkippedImages} unreadable image(s) were left out (data.skip_bad_images)");
        }
        catch (CallbackFailedException e)
        {
            throw e.WithKept(checkpoints.LastSavedStep is long step
                ? $"{folder.LastCheckpoint} holds step {step}; resume the run to go on"
                : $"no checkpoint had been written yet: remove {folder.Root} and start again");
        }
        catch (TrainingDivergedException e)
        {
            // The engine knows no files; say here what the run folder keeps.
            var kept = checkpoints.LastSavedStep is long step
                ? $"{folder.LastCheckpoint} holds the last good state (step {step})"
                : "no checkpoint had been written yet";
            throw new TrainingDivergedException($"{e.Message}; {kept}", e.Step, e.Epoch);
        }
        finally
        {
            foreach (var sink in sinks) sink.Dispose();
            mixed?.Dispose();
        }
        return session;
    }

    /// <summary>
    /// Every rank starts from rank 0's state: its weights and buffers (the same seed gives the same
    /// ones already; this also covers weights read from a file), its averaged copy, checked once.
    /// </summary>
    static void StartTogether(ICollective world, TrainingSession session)
    {
        if (world.Size == 1) return;
        ModelSync.BroadcastState(world, session.Model);
        if (session.Ema is not null) ModelSync.BroadcastState(world, session.Ema.Model);
        RequireSameWeights(world, session.Model);
    }

    /// <summary>The ranks' weights agree bit for bit (each applies the same averaged gradients).</summary>
    static void RequireSameWeights(ICollective world, nn.Module model)
    {
        int differing = ModelSync.RanksDiffering(world, model);
        if (differing > 0) throw new InvalidOperationException($"the weights of {differing} of {world.Size} ranks differ from rank 0's");
    }

    /// <summary>Where a resumed run continues: after an epoch, or inside one.</summary>
    static string ResumePoint(TrainingSession s) => s.Progress.MidEpoch
        ? $"resuming at step {s.Step}, epoch {s.Epoch + 1} after batch {s.Progress.Batches} of {s.BatchesPerEpoch}"
        : $"resuming after epoch {s.Epoch}";

    static LrSchedule WithPhases(RunConfig config, LrSchedule schedule) =>
        config.Finetune.HeadEpochs > 0 ? new PhaseSchedule(schedule, config.Finetune.HeadEpochs, config.Finetune.Phase2Lr) : schedule;

    static nn.Module<Tensor, Tensor> CreateOn(RunConfig config, RunParts parts, int classes, Device device)
    {
        var model = parts.Model is null ? RunModel.Create(config, classes) : parts.Model(classes);
        model.to(device);
        return model;
    }

    /// <summary>The resumed run's config and folder, checked; nothing is written or locked yet.</summary>
    static (RunConfig, RunFolder) Prepare(ResumeRequest r, RunParts parts)
    {
        var folder = new RunFolder(r.OutDir);
        if (!File.Exists(folder.LastCheckpoint)) throw new BadInputException($"cannot resume: {folder.LastCheckpoint} does not exist");
        // The run folder's resolved config is the run; a --config is only a cross-check of its model.
        var config = ConfigLoader.Load(folder.Config, r.Overrides);
        if (r.SameModelAs is not null && ConfigLoader.Load(r.SameModelAs, []).Model != config.Model)
            throw new BadInputException($"{r.SameModelAs} trains a different model than the run in {folder.Root}");
        parts.RequireSameKind(config, folder.Root);
        return (config, folder);
    }

    /// <summary>The first 64 augmented training images, mapped back to [0, 1] for display.</summary>
    static Tensor SampleImages(Data.Loading.BatchLoader loader, Normalization n)
    {
        using var batch = loader.MakeBatch(0, 0, loader.Order(0));
        using var scope = NewDisposeScope();
        var x = batch.ImagesOn(CPU)[TensorIndex.Slice(0, 64)];
        long c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var std = tensor(n.Std).reshape(1, c, 1, 1);
        var mean = n.Mode == NormalizationMode.Channel ? tensor(n.Mean).reshape(1, c, 1, 1) : tensor(n.Mean).reshape(1, c, h, w);
        var pixels = (x * std + mean).div_(n.Scale);
        return (n.Bgr ? pixels.flip(1) : pixels).clamp(0, 1).MoveToOuterDisposeScope();
    }
}
