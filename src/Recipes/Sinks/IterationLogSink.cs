using System.Globalization;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Storage;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// Every N iterations: the mean training loss and accuracy of those N batches, as rows of
/// iterations.csv (step,epoch,lr,train_loss,train_top1) and TensorBoard scalars train_iter/loss and
/// train_iter/top1 at the iteration. Curves against iterations (the ResNet paper's figures) come
/// from here. On resume (and after a rollback on bad numbers), rows past the checkpoint's
/// iteration and a torn last line are dropped; a window cut by a resume or rollback averages only
/// the batches after it.
/// </summary>
public sealed class IterationLogSink(string path, int every, TensorBoardSink? tensorBoard) : TrainingSink
{
    const string Header = "step,epoch,lr,train_loss,train_top1";
    double _lossSum, _correctSum;
    long _samples;

    public override void RunStarted(TrainingSession s) => KeepUpTo(s.Step);

    /// <summary>Steps after the rollback's are trained again: their rows go, and the window starts afresh.</summary>
    public override void RolledBack(TrainingSession s, RollbackRecord rollback)
    {
        KeepUpTo(s.Step);
        _lossSum = _correctSum = 0;
        _samples = 0;
    }

    void KeepUpTo(long step)
    {
        RunFileRepair.TrimCsv(path, "step", step);
        var kept = File.Exists(path)
            ? File.ReadLines(path).Skip(1).Where(l => long.Parse(l.Split(',')[0], CultureInfo.InvariantCulture) <= step).ToList()
            : [];
        DurableFile.WriteAllText(path, string.Concat(new[] { Header }.Concat(kept).Select(l => l + Environment.NewLine)));
    }

    public override void BatchEnded(TrainingSession s, BatchProgress p)
    {
        _lossSum += p.BatchLoss * p.BatchSize;
        _correctSum += p.BatchTop1 * p.BatchSize;
        _samples += p.BatchSize;
        if (p.Step % every != 0) return;
        double loss = _lossSum / _samples, top1 = _correctSum / _samples;
        DiskFull.Guard(path, () => File.AppendAllLines(path, [string.Create(CultureInfo.InvariantCulture, $"{p.Step},{p.Epoch},{p.Lr},{loss},{top1}")]));
        tensorBoard?.Scalar("train_iter/loss", loss, p.Step);
        tensorBoard?.Scalar("train_iter/top1", top1, p.Step);
        _lossSum = _correctSum = 0;
        _samples = 0;
    }

    /// <summary>Reads iterations.csv back as (step, train_loss, train_top1).</summary>
    public static List<(long Step, double Loss, double Top1)> Read(string path) =>
        File.ReadLines(path).Skip(1).Select(l => l.Split(','))
            .Select(f => (long.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[3], CultureInfo.InvariantCulture), double.Parse(f[4], CultureInfo.InvariantCulture)))
            .ToList();
}
