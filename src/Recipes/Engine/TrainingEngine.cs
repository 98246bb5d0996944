using System.Diagnostics;
using Trainer.Data.Loading;
using Trainer.Recipes.Config;
using Trainer.Recipes.Distributed;
using Trainer.Recipes.Regularization;
using Trainer.Recipes.Sinks;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>
/// The one training loop: train an epoch, evaluate, let the schedule react, tell the sinks.
/// It knows no files or formats; sinks (console, CSV, TensorBoard, checkpoints) do that.
/// An epoch starts where the session's <c>Progress</c> says (a run resumed mid-epoch skips the
/// batches already done). <paramref name="stop"/> ends the run between two steps (the sinks'
/// RunStopped saves where it stands). A step with a NaN or infinite loss or gradient never
/// trains on: it stops the run (<see cref="TrainingDivergedException"/>) or, with
/// train.on_nan: rollback, goes back to the last good state at a lower rate.
/// In a job of several ranks every rank runs this loop on its share of each batch: the gradients
/// are averaged after backward, and each step's metrics, bad numbers and stop requests are added
/// up over the ranks, so all of them take the same decisions at the same step.
/// </summary>
internal sealed class TrainingEngine(TrainingSession session, BatchLoader train, BatchLoader validation, IReadOnlyList<TrainingSink> sinks, CancellationToken stop = default)
{
    enum EpochOutcome { Completed, Stopped, RolledBack }

    public TrainingSession Session => session;

    public void Run()
    {
        foreach (var sink in sinks) sink.RunStarted(session);
        var config = session.Config;
        using var goodState = config.Train.OnNan == NanPolicy.Rollback ? new GoodState(session) : null;
        while (!session.Finished)
        {
            var outcome = TrainEpoch(goodState);
            if (outcome == EpochOutcome.Stopped)
            {
                session.Stopped = true;
                foreach (var sink in sinks) sink.RunStopped(session);
                return;
            }
            if (outcome == EpochOutcome.RolledBack) continue;
            var epoch = session.Progress;
            var clock = Stopwatch.StartNew();
            var trained = new AccuracyMeter(epoch).Result;
            double imagesPerSecond = trained.Samples / Math.Max(epoch.Seconds, 1e-9);
            var collective = session.Collective;
            ModelSync.BroadcastBuffers(collective, session.Model);
            var val = Evaluator.Evaluate(session.Model, validation, session.Device, config.Train.ChannelsLast, collective: collective);
            var metrics = new Dictionary<string, double>
            {
                ["lr"] = epoch.Lr,
                ["train_loss"] = trained.Loss, ["train_top1"] = trained.Top1,
                ["val_loss"] = val.Loss, ["val_top1"] = val.Top1, ["val_top5"] = val.Top5,
            };
            if (session.Ema is not null)
            {
                ModelSync.BroadcastBuffers(collective, session.Ema.Model);
                var ema = Evaluator.Evaluate(session.Ema.Model, validation, session.Device, config.Train.ChannelsLast, collective: collective);
                metrics["ema_val_loss"] = ema.Loss; metrics["ema_val_top1"] = ema.Top1; metrics["ema_val_top5"] = ema.Top5;
            }
            session.Schedule.EpochEnded(metrics);
            session.Epoch++;
            session.Progress = EpochProgress.Start;
            session.Metrics = metrics;
            bool best = val.Top1 > session.BestTop1;
            if (best) { session.BestTop1 = val.Top1; session.BestTop5 = val.Top5; session.BestEpoch = session.Epoch; }
            Models.Native.NativeHeap.CollectGarbage();   // so the memory sinks record at the epoch's end is what is live
            double seconds = epoch.Seconds + clock.Elapsed.TotalSeconds;
            session.ElapsedSeconds += seconds;
            var record = new EpochRecord(session.Epoch, session.Step, metrics, seconds, best, imagesPerSecond);
            foreach (var sink in sinks) sink.EpochEnded(session, record);
            goodState?.Take();
            // After a completed epoch only; every rank asks (rank 0's sinks may end the run, the others have none).
            if (AnyRank(session.EndRequested)) break;
        }
        foreach (var sink in sinks) sink.RunEnded(session);
    }

    EpochOutcome TrainEpoch(GoodState? goodState)
    {
        var model = session.Model;
        var optimizer = session.Optimizer;
        var config = session.Config;
        model.train();
        session.FineTuning?.Apply(session.Epoch);
        var start = session.Progress.MidEpoch ? session.Progress : EpochProgress.Start with { Lr = optimizer.LearningRate };
        session.Progress = start;
        var meter = new AccuracyMeter(start);
        var clock = Stopwatch.StartNew();
        double lr = start.Lr;
        int batchIndex = start.Batches;
        // fp16's loss scaling meets overflowing gradients on purpose (it skips those steps); only its loss is judged.
        bool checkGradients = session.Mixed is not { DynamicScale: true };
        foreach (var batch in train.Epoch(session.Epoch, start.Batches))
        {
            if (session.Finished) { batch.Dispose(); break; } // train.iterations reached mid-epoch
            // A stop asked for before this call's first step (during setup or validation) stops before it.
            if (batchIndex == start.Batches && AnyRank(stop.IsCancellationRequested)) { batch.Dispose(); return EpochOutcome.Stopped; }
            var batchMeter = new AccuracyMeter();
            string? problem;
            // Read once: the step under way finishes, its weights are checked, then the run stops.
            bool stopping = stop.IsCancellationRequested;
            using (batch)
            using (var scope = NewDisposeScope())
            {
                lr = session.Schedule.LearningRate(session.Epoch, session.Step) * session.LrScale;
                optimizer.LearningRate = lr;
                var (x, y) = Inputs.ToDevice(batch, session.Device, config.Train.ChannelsLast);
                var targets = new Targets(y);
                if (session.Mixing is not null) (x, targets) = session.Mixing.Apply(x, y, session.Step);
                Action? averageGradients = session.Gradients is { } gradients ? () => gradients.Average(batch.Size, batch.GlobalSize) : null;
                Determinism.SeedStep(session.Device, config.Seed, session.Step);
                var (logits, loss) = TrainingStep.Run(model, optimizer, x, targets, session.Criterion, config.Train.AuxLossWeight, session.Mixed, averageGradients);
                session.Ema?.Update();
                session.Step++;
                session.ImagesSeen += batch.GlobalSize;
                // The state after this step is kept (checkpoint, epoch end, stop): its weights are checked too.
                bool kept = batchIndex + 1 == train.BatchesPerEpoch || session.Finished || config.Checkpoint.DueAfterStep(session.Step) || stopping;
                // One read from the device a step: the loss, the checks and the batch's correct predictions together.
                var hits = AccuracyMeter.Hits(logits.detach(), targets.Dominant);
                (float lossValue, problem, var counted) = StepCheck.Read(loss, checkGradients ? optimizer.GradientNorm() : null, kept ? StepCheck.WeightsFinite(model) : null, hits);
                if (problem is null) batchMeter.Add(counted, targets.Dominant.shape[0], lossValue);
                if (session.Collective.Size > 1) (problem, stopping) = Agree(batchMeter, problem, stopping);
                if (problem is null)
                {
                    meter.Add(batchMeter);
                    session.Schedule.IterationEnded(1 - batchMeter.Top1);
                }
            }
            if (problem is not null) return BadNumbers(goodState, problem, batchIndex + 1);
            batchIndex++;
            var elapsed = TimeSpan.FromSeconds(start.Seconds) + clock.Elapsed;
            session.Progress = meter.Progress(batchIndex, lr, elapsed.TotalSeconds);
            var progress = new BatchProgress(session.Epoch + 1, session.TotalEpochs, batchIndex, train.BatchesPerEpoch,
                meter.Loss, meter.Top1, (meter.Samples - start.Samples) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), elapsed,
                session.Step, lr, batchMeter.Loss, batchMeter.Top1, batchMeter.Samples);
            foreach (var sink in sinks) sink.BatchEnded(session, progress);
            if (config.Checkpoint.DueAfterStep(session.Step)) goodState?.Take();
            if (stopping) return EpochOutcome.Stopped;
        }
        return EpochOutcome.Completed;
    }

    /// <summary>True when any rank's <paramref name="mine"/> is (this rank's alone in a job of one).</summary>
    bool AnyRank(bool mine)
    {
        if (session.Collective.Size == 1) return mine;
        Span<double> flag = [mine ? 1 : 0];
        session.Collective.SumInPlace(flag);
        return flag[0] > 0;
    }

    /// <summary>
    /// The step as all ranks saw it: the batch's metrics summed over the ranks' shares, bad numbers
    /// if any rank met them, a stop if any rank was asked to stop.
    /// </summary>
    (string? Problem, bool Stopping) Agree(AccuracyMeter batchMeter, string? problem, bool stopping)
    {
        var collective = session.Collective;
        Span<double> flags = [problem is null ? 0 : 1, stopping ? 1 : 0];
        batchMeter.SumOver(collective, flags);   // one allreduce a step for all of it
        if (problem is null && flags[0] > 0) problem = $"a NaN or infinite number on another rank ({flags[0]:F0} of {collective.Size} ranks)";
        return (problem, flags[1] > 0);
    }

    /// <summary>Step <c>session.Step</c> (batch <paramref name="batch"/> of its epoch) produced a NaN or an infinity: roll back, or stop.</summary>
    EpochOutcome BadNumbers(GoodState? goodState, string problem, int batch)
    {
        var policy = session.Config.Train;
        long step = session.Step;
        int epoch = session.Epoch + 1;
        var where = $"step {step} (epoch {epoch}, batch {batch} of {train.BatchesPerEpoch})";
        if (goodState is null)
            throw new TrainingDivergedException($"training diverged at {where}: {problem}; lower optimizer.lr, or set train.on_nan: rollback to retry from the last good state at a lower rate", step, epoch);
        if (session.NanRollbacks >= policy.NanMaxRollbacks)
            throw new TrainingDivergedException($"training diverged at {where}: {problem}, after {session.NanRollbacks} rollback(s) (train.nan_max_rollbacks: {policy.NanMaxRollbacks}); lower optimizer.lr", step, epoch);
        goodState.RollBack(policy.NanLrFactor);
        var record = new RollbackRecord(step, epoch, problem, goodState.Step, session.LrScale, session.NanRollbacks, policy.NanMaxRollbacks);
        foreach (var sink in sinks) sink.RolledBack(session, record);
        return EpochOutcome.RolledBack;
    }
}
