using System.Globalization;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Reproduction;

/// <summary>A setting in which a run differs from the paper's recipe.</summary>
internal sealed record SettingChange(string Key, string Paper, string Run);

/// <summary>
/// How a run of a paper recipe compares with the paper: the reported top-1 (and top-5) error
/// beside the run's best and final, the settings changed from the recipe as shipped, and the
/// compute the run used. Written at the end of the run and into summary.json.
/// </summary>
internal sealed record ReproductionReport(
    RecipeConfig Recipe, double? BestTop1Error, double? FinalTop1Error, double? BestTop5Error, double? FinalTop5Error, int BestEpoch,
    IReadOnlyList<SettingChange>? Changes, string RunData, string RunEvaluation, int TrainSamples, int Epochs, long Steps, long ImagesSeen, double WallSeconds, string Device)
{
    /// <summary>Keys that say where and how a run executes, not what it trains: never reported as changes.</summary>
    static readonly string[] Ignored =
        ["data.root", "data.workers", "data.prefetch", "data.cache", "data.cache_dir", "data.class_names", "data.skip_bad_images",
         "log.", "checkpoint.", "study.", "recipe.", "device", "threads"];

    /// <summary>The report for a session whose config names a recipe; null for other runs.</summary>
    public static ReproductionReport? For(TrainingSession s)
    {
        var info = s.Config.Recipe;
        if (info.Name.Length == 0) return null;
        var paper = RecipeCatalog.Find(info.Name);
        double? Error(double accuracy) => accuracy >= 0 && !double.IsNaN(accuracy) ? 1 - accuracy : null;
        return new ReproductionReport(
            info,
            Error(s.BestTop1), s.Metrics.TryGetValue("val_top1", out var top1) ? Error(top1) : null,
            Error(s.BestTop5), s.Metrics.TryGetValue("val_top5", out var top5) ? Error(top5) : null, s.BestEpoch,
            paper is null ? null : Differences(paper.Config, s.Config),
            s.Config.Data.Name == "cifar10-sample" ? "cifar10-sample" : $"{s.Config.Data.Name} at {s.Config.Data.Root}",
            s.Config.Data.TenCrop ? "10-crop" : "single crop",
            s.TrainSamples, s.Epoch, s.Step, s.ImagesSeen, s.ElapsedSeconds, s.Device.ToString());
    }

    /// <summary>Every training setting of <paramref name="run"/> that differs from <paramref name="paper"/>, and the effective learning rate when it changed.</summary>
    public static List<SettingChange> Differences(RunConfig paper, RunConfig run)
    {
        var a = ConfigWriter.Flatten(paper);
        var b = ConfigWriter.Flatten(run);
        var changes = a.Keys.Union(b.Keys)
            .Where(k => !Ignored.Any(i => i.EndsWith('.') ? k.StartsWith(i) : k == i))
            .Where(k => a.GetValueOrDefault(k) != b.GetValueOrDefault(k))
            .Select(k => new SettingChange(k, a.GetValueOrDefault(k) ?? "-", b.GetValueOrDefault(k) ?? "-"))
            .ToList();
        double paperLr = paper.Optimizer.StartLr(paper.Train.BatchSize), runLr = run.Optimizer.StartLr(run.Train.BatchSize);
        if (Math.Abs(paperLr - runLr) > 1e-12 * paperLr)
            changes.Add(new SettingChange("optimizer.lr (effective)", Rate(paperLr), Rate(runLr)));
        return changes;
    }

    /// <summary>A learning rate to 6 significant digits (0.045 rather than 0.045000000000000005).</summary>
    static string Rate(double lr) => lr.ToString("G6", CultureInfo.InvariantCulture);

    static string Percent(double? fraction) => fraction is double f ? string.Create(CultureInfo.InvariantCulture, $"{f * 100:F2}%") : "-";

    /// <summary>The report as the console shows it at the end of a run.</summary>
    public IEnumerable<string> Lines()
    {
        yield return $"reproduction of {Recipe.Name}: {Recipe.Paper}{(Recipe.Section.Length > 0 ? ", " + Recipe.Section : "")}";
        yield return $"  top-1 error: paper {Percent(Recipe.ReportedTop1Error)} ({Recipe.Dataset}{(Recipe.Evaluation.Length > 0 ? ", " + Recipe.Evaluation : "")}); " +
                     $"this run best {Percent(BestTop1Error)} (epoch {BestEpoch}), final {Percent(FinalTop1Error)} ({RunData}, {RunEvaluation})";
        if (Recipe.ReportedTop5Error is not null)
            yield return $"  top-5 error: paper {Percent(Recipe.ReportedTop5Error)}; this run at best epoch {Percent(BestTop5Error)}, final {Percent(FinalTop5Error)}";
        if (Changes is null) yield return "  changed from the paper: unknown (the recipe is not built into trainer)";
        else if (Changes.Count == 0) yield return "  changed from the paper: nothing";
        else yield return "  changed from the paper: " + string.Join("; ", Changes.Select(c => $"{c.Key} {c.Paper} -> {c.Run}"));
        yield return string.Create(CultureInfo.InvariantCulture, $"  compute: {Epochs} epochs over {TrainSamples:N0} training images, {Steps:N0} iterations, {ImagesSeen:N0} images seen, {WallSeconds:F0} s on {Device}");
    }

    /// <summary>The report as summary.json holds it.</summary>
    public Dictionary<string, object?> ToJson() => new()
    {
        ["recipe"] = Recipe.Name,
        ["paper"] = Recipe.Paper,
        ["section"] = Recipe.Section,
        ["paper_dataset"] = Recipe.Dataset,
        ["paper_evaluation"] = Recipe.Evaluation,
        ["reported"] = new Dictionary<string, object?> { ["top1_error"] = Recipe.ReportedTop1Error, ["top5_error"] = Recipe.ReportedTop5Error },
        ["run"] = new Dictionary<string, object?>
        {
            ["best_top1_error"] = BestTop1Error, ["final_top1_error"] = FinalTop1Error,
            ["best_top5_error"] = BestTop5Error, ["final_top5_error"] = FinalTop5Error,
            ["best_epoch"] = BestEpoch, ["data"] = RunData, ["evaluation"] = RunEvaluation,
        },
        ["changed"] = Changes?.Select(c => new Dictionary<string, string> { ["key"] = c.Key, ["paper"] = c.Paper, ["run"] = c.Run }).ToList(),
        ["compute"] = new Dictionary<string, object?>
        {
            ["train_samples"] = TrainSamples, ["epochs"] = Epochs, ["iterations"] = Steps, ["images_seen"] = ImagesSeen,
            ["wall_seconds"] = Math.Round(WallSeconds, 2), ["device"] = Device,
        },
    };
}
