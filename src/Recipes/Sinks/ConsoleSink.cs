using System.Globalization;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// A live progress bar per epoch (loss, accuracy, images/s, ETA) on a terminal, then one summary
/// line per epoch. When output is redirected (CI, a log file) only the summary lines are written.
/// </summary>
internal sealed class ConsoleSink(TextWriter output, bool live) : TrainingSink
{
    const int BarWidth = 24;
    DateTime _lastDraw = DateTime.MinValue;
    int _lastLength;

    public override void RunStarted(TrainingSession s)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{s.Config.Model}: {s.Parameters:N0} parameters{(s.TrainableParameters != s.Parameters ? $" ({s.TrainableParameters:N0} trained)" : "")} on {s.Device.type.ToString().ToLowerInvariant()}; " +
            $"{s.TrainSamples:N0} training / {s.ValidationSamples:N0} validation images; batch {s.Config.Train.BatchSize}, " +
            $"{s.BatchesPerEpoch} iterations per epoch; epochs {s.Epoch + 1}-{s.TotalEpochs}"));
        if (Models.Native.CpuKernels.Note is { } note) output.WriteLine(note);
    }

    public override void BatchEnded(TrainingSession s, BatchProgress p)
    {
        if (!live) return;
        var now = DateTime.UtcNow;
        if (p.Batch != p.BatchesInEpoch && (now - _lastDraw).TotalMilliseconds < 200) return;
        _lastDraw = now;
        int filled = (int)Math.Round(BarWidth * (double)p.Batch / p.BatchesInEpoch);
        var eta = TimeSpan.FromSeconds(p.Elapsed.TotalSeconds / p.Batch * (p.BatchesInEpoch - p.Batch));
        var line = string.Create(CultureInfo.InvariantCulture,
            $"epoch {p.Epoch}/{p.TotalEpochs} [{new string('#', filled)}{new string('-', BarWidth - filled)}] {p.Batch}/{p.BatchesInEpoch} " +
            $"loss {p.Loss:F4} acc {p.Top1 * 100:F1}% {p.ImagesPerSecond:F0} img/s ETA {eta:mm\\:ss}");
        output.Write("\r" + line.PadRight(_lastLength));
        _lastLength = line.Length;
        output.Flush();
    }

    public override void EpochEnded(TrainingSession s, EpochRecord e)
    {
        ClearBar();
        var m = e.Metrics;
        var average = m.TryGetValue("ema_val_top1", out var ema) ? string.Create(CultureInfo.InvariantCulture, $"ema top1 {ema * 100:F2}%  ") : "";
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"epoch {e.Epoch}/{s.TotalEpochs}  lr {m["lr"]:G4}  train loss {m["train_loss"]:F4} top1 {m["train_top1"] * 100:F2}%  " +
            $"val loss {m["val_loss"]:F4} top1 {m["val_top1"] * 100:F2}% top5 {m["val_top5"] * 100:F2}%  {average}" +
            $"{e.TrainImagesPerSecond:F0} img/s  {e.Seconds:F1}s{(e.IsBest ? "  *best" : "")}"));
        output.Flush();
    }

    public override void RunStopped(TrainingSession s) => ClearBar();

    public override void RolledBack(TrainingSession s, RollbackRecord r)
    {
        ClearBar();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step {r.BadStep} (epoch {r.Epoch}): {r.Problem}; rolled back to step {r.BackToStep}, learning rate now x{r.LrScale:G4} of the schedule's (rollback {r.Rollback} of {r.MaxRollbacks})"));
        output.Flush();
    }

    void ClearBar()
    {
        if (live && _lastLength > 0) { output.Write("\r" + new string(' ', _lastLength) + "\r"); _lastLength = 0; }
    }

    public override void RunEnded(TrainingSession s)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"done: {s.Epoch} epochs, {s.Step} iterations, best val top1 {s.BestTop1 * 100:F2}% (epoch {s.BestEpoch}), {s.ElapsedSeconds:F0}s"));
        if (Reproduction.ReproductionReport.For(s) is { } report)
            foreach (var line in report.Lines()) output.WriteLine(line);
    }
}
