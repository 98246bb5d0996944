using System.Text.Json;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// summary.json: final and best metrics, parameters, wall time and device; rewritten after each
/// epoch (so a crashed run still has one) and at the end, when an optional held-out test
/// evaluation is added.
/// </summary>
internal sealed class SummarySink(string path, string dataset, Func<EvalResult>? finalTest, int skippedImages = 0) : TrainingSink
{
    public override void EpochEnded(TrainingSession s, EpochRecord e) => Write(s, finished: false, test: null);

    public override void RunEnded(TrainingSession s) => Write(s, finished: true, test: finalTest?.Invoke());

    public override void RunStopped(TrainingSession s) => Write(s, finished: false, test: null);

    void Write(TrainingSession s, bool finished, EvalResult? test)
    {
        var summary = new Dictionary<string, object?>
        {
            ["model"] = s.Config.Model,
            ["dataset"] = dataset,
            ["params"] = s.Parameters,
            ["trainable_params"] = s.TrainableParameters,
            ["device"] = s.Device.ToString(),
            ["train_samples"] = s.TrainSamples,
            ["val_samples"] = s.ValidationSamples,
            ["epochs"] = s.Epoch,
            ["steps"] = s.Step,
            ["wall_seconds"] = Math.Round(s.ElapsedSeconds, 2),
            ["finished"] = finished,
            ["final"] = s.Metrics,
            ["best"] = new Dictionary<string, object> { ["epoch"] = s.BestEpoch, ["val_top1"] = s.BestTop1, ["val_top5"] = s.BestTop5 },
            ["images_seen"] = s.ImagesSeen,
        };
        if (s.Collective.Size > 1) summary["world_size"] = s.Collective.Size;
        if (skippedImages > 0) summary["skipped_images"] = skippedImages;
        if (Reproduction.ReproductionReport.For(s) is { } report) summary["reproduction"] = report.ToJson();
        if (test is not null)
            summary["test"] = new Dictionary<string, object> { ["loss"] = test.Loss, ["top1"] = test.Top1, ["top5"] = test.Top5, ["samples"] = test.Samples };
        Storage.DurableFile.WriteAllText(path, JsonSerializer.Serialize(summary, Checkpoints.Checkpoint.Json));
    }
}
