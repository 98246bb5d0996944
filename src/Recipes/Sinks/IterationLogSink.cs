using System.Globalization;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Storage;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// Every N iterations: the mean training loss and accuracy of those N batches, as rows of
/// iterations.csv (step,epoch,lr,train_loss,train_top1) and TensorBoard scalars train_iter/loss and
/// train_iter/top1 at the iteration; fp16 runs add the dynamic loss scale after that iteration
/// (column loss_scale, scalar train_iter/loss_scale), so a run's scale can be followed and a
/// resumed run's compared. Curves against iterations (the ResNet paper's figures) come
/// from here. On resume (and after a rollback on bad numbers), rows past the checkpoint's
/// iteration and a torn last line are dropped; a window cut by a resume or rollback averages only
/// the batches after it.
/// </summary>
internal sealed class IterationLogSink(string path, int every, TensorBoardSink? tensorBoard) : TrainingSink
{
    const string Header = "step,epoch,lr,train_loss,train_top1";
    const string ScaleColumn = ",loss_scale";
    double _lossSum, _correctSum;
    long _samples;
    bool _scaled;

    public override void RunStarted(TrainingSession s)
    {
        _scaled = s.Mixed is { DynamicScale: true };
        KeepUpTo(s.Step);
    }

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
        var header = _scaled ? Header + ScaleColumn : Header;
        int columns = header.Split(',').Length;
        var kept = File.Exists(path)
            ? File.ReadLines(path).Skip(1).Where(l => long.Parse(l.Split(',')[0], CultureInfo.InvariantCulture) <= step).Select(l => Fit(l, columns)).ToList()
            : [];
        DurableFile.WriteAllText(path, string.Concat(new[] { header }.Concat(kept).Select(l => l + Environment.NewLine)));
    }

    /// <summary>
    /// A kept row with the header's columns: a run resumed in another precision (or one written
    /// before the loss_scale column) gains an empty loss_scale or loses it, so the next repair keeps it.
    /// </summary>
    static string Fit(string row, int columns)
    {
        var fields = row.Split(',');
        return string.Join(',', fields.Take(columns).Concat(Enumerable.Repeat("", Math.Max(0, columns - fields.Length))));
    }

    public override void BatchEnded(TrainingSession s, BatchProgress p)
    {
        _lossSum += p.BatchLoss * p.BatchSize;
        _correctSum += p.BatchTop1 * p.BatchSize;
        _samples += p.BatchSize;
        if (p.Step % every != 0) return;
        double loss = _lossSum / _samples, top1 = _correctSum / _samples;
        var row = string.Create(CultureInfo.InvariantCulture, $"{p.Step},{p.Epoch},{p.Lr},{loss},{top1}");
        if (_scaled) row += string.Create(CultureInfo.InvariantCulture, $",{s.Mixed!.LossScale}");
        DiskFull.Guard(path, () => File.AppendAllLines(path, [row]));
        tensorBoard?.Scalar("train_iter/loss", loss, p.Step);
        tensorBoard?.Scalar("train_iter/top1", top1, p.Step);
        if (_scaled) tensorBoard?.Scalar("train_iter/loss_scale", s.Mixed!.LossScale, p.Step);
        _lossSum = _correctSum = 0;
        _samples = 0;
    }

    /// <summary>Reads iterations.csv back as (step, train_loss, train_top1).</summary>
    public static List<(long Step, double Loss, double Top1)> Read(string path) =>
        File.ReadLines(path).Skip(1).Select(l => l.Split(','))
            .Select(f => (long.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[3], CultureInfo.InvariantCulture), double.Parse(f[4], CultureInfo.InvariantCulture)))
            .ToList();
}
