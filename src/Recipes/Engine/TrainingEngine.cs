using System.Diagnostics;
using Trainer.Data.Loading;
using Trainer.Recipes.Regularization;
using Trainer.Recipes.Sinks;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>
/// The one training loop: train an epoch, evaluate, let the schedule react, tell the sinks.
/// It knows no files or formats; sinks (console, CSV, TensorBoard, checkpoints) do that.
/// </summary>
public sealed class TrainingEngine(TrainingSession session, BatchLoader train, BatchLoader validation, IReadOnlyList<TrainingSink> sinks)
{
    public TrainingSession Session => session;

    public void Run()
    {
        foreach (var sink in sinks) sink.RunStarted(session);
        var config = session.Config;
        while (!session.Finished)
        {
            var clock = Stopwatch.StartNew();
            var (trained, lr) = TrainEpoch();
            double imagesPerSecond = trained.Samples / clock.Elapsed.TotalSeconds;
            var val = Evaluator.Evaluate(session.Model, validation, session.Device, config.Train.ChannelsLast);
            var metrics = new Dictionary<string, double>
            {
                ["lr"] = lr,
                ["train_loss"] = trained.Loss, ["train_top1"] = trained.Top1,
                ["val_loss"] = val.Loss, ["val_top1"] = val.Top1, ["val_top5"] = val.Top5,
            };
            if (session.Ema is not null)
            {
                var ema = Evaluator.Evaluate(session.Ema.Model, validation, session.Device, config.Train.ChannelsLast);
                metrics["ema_val_loss"] = ema.Loss; metrics["ema_val_top1"] = ema.Top1; metrics["ema_val_top5"] = ema.Top5;
            }
            session.Schedule.EpochEnded(metrics);
            session.Epoch++;
            session.Metrics = metrics;
            bool best = val.Top1 > session.BestTop1;
            if (best) { session.BestTop1 = val.Top1; session.BestTop5 = val.Top5; session.BestEpoch = session.Epoch; }
            double seconds = clock.Elapsed.TotalSeconds;
            session.ElapsedSeconds += seconds;
            var record = new EpochRecord(session.Epoch, session.Step, metrics, seconds, best, imagesPerSecond);
            foreach (var sink in sinks) sink.EpochEnded(session, record);
        }
        foreach (var sink in sinks) sink.RunEnded(session);
    }

    (EvalResult Result, double Lr) TrainEpoch()
    {
        var model = session.Model;
        var optimizer = session.Optimizer;
        model.train();
        session.FineTuning?.Apply(session.Epoch);
        var meter = new AccuracyMeter();
        var clock = Stopwatch.StartNew();
        double lr = optimizer.LearningRate;
        int batchIndex = 0;
        foreach (var batch in train.Epoch(session.Epoch))
        {
            var batchMeter = new AccuracyMeter();
            using (batch)
            using (var scope = NewDisposeScope())
            {
                if (session.Finished) break; // train.iterations reached mid-epoch
                lr = session.Schedule.LearningRate(session.Epoch, session.Step);
                optimizer.LearningRate = lr;
                var (x, y) = Inputs.ToDevice(batch, session.Device, session.Config.Train.ChannelsLast);
                var targets = new Targets(y);
                if (session.Mixing is not null) (x, targets) = session.Mixing.Apply(x, y, session.Step);
                var (logits, loss) = TrainingStep.Run(model, optimizer, x, targets, session.Criterion, session.Config.Train.AuxLossWeight, session.Mixed);
                session.Ema?.Update();
                session.Step++;
                session.ImagesSeen += y.shape[0];
                float lossValue = loss.item<float>();
                meter.Add(logits.detach(), targets.Dominant, lossValue);
                batchMeter.Add(logits.detach(), targets.Dominant, lossValue);
                session.Schedule.IterationEnded(1 - batchMeter.Top1);
            }
            batchIndex++;
            var progress = new BatchProgress(session.Epoch + 1, session.TotalEpochs, batchIndex, train.BatchesPerEpoch,
                meter.Loss, meter.Top1, meter.Samples / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), clock.Elapsed,
                session.Step, lr, batchMeter.Loss, batchMeter.Top1, batchMeter.Samples);
            foreach (var sink in sinks) sink.BatchEnded(session, progress);
        }
        return (meter.Result, lr);
    }
}
