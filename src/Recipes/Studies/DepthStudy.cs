using Trainer.Recipes.Config;
using Trainer.Recipes.Runs;

namespace Trainer.Recipes.Studies;

/// <summary>One net of the study and where its run lives.</summary>
public sealed record StudyRun(string Kind, int Depth, string Folder)
{
    public string Model => $"{Kind}{Depth}";
}

/// <summary>The study's runs; <c>Stopped</c> when a stop request ended it before they all finished.</summary>
public sealed record StudyOutcome(IReadOnlyList<StudyRun> Runs, bool Stopped);

/// <summary>
/// The ResNet paper's degradation experiment (Figures 1 and 6, Table 6): plain and residual CIFAR
/// nets over several depths, same recipe, seed and data; one run folder each inside the study
/// folder. A rerun skips finished runs and resumes an interrupted one; then the figure, the
/// curves CSV and the Markdown table are (re)written from the run folders. A stop request
/// (Ctrl-C) stops the run under way after its step, saved, and ends the study there.
/// On several ranks every rank trains each net in turn and rank 0 alone writes and prints.
/// </summary>
public static class DepthStudy
{
    /// <summary>What `trainer study depth --nproc N` checks before it starts N processes: the config, and a global batch that splits over them.</summary>
    public static void CheckBeforeLaunch(string? configPath, IReadOnlyList<string> overrides, int ranks) =>
        TrainingRun.RequireDivisible(ConfigLoader.Load(configPath, overrides, ConfigLoader.StudyDefaultConfig), ranks);

    public static readonly string[] Kinds = ["plain", "resnet"];

    /// <summary>A new study's folder when none is given.</summary>
    public static string DefaultFolder() => Path.Combine("runs", $"study-depth-{DateTime.Now:yyyyMMdd-HHmmss}");

    public static StudyOutcome Execute(string? configPath, IReadOnlyList<string> overrides, string? outDir, TextWriter output, bool liveProgress, CancellationToken stop = default)
    {
        var config = ConfigLoader.Load(configPath, overrides, ConfigLoader.StudyDefaultConfig);
        var folder = outDir ?? DefaultFolder();
        bool writer = Distributed.World.Current.Rank == 0;
        if (!writer) output = TextWriter.Null;
        if (writer)
        {
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "study.yaml"), ConfigWriter.ToYaml(config));
        }
        var runs = Kinds.SelectMany(kind => config.Study.Depths.Select(d => new StudyRun(kind, d, Path.Combine(folder, $"{kind}{d}")))).ToList();
        foreach (var run in runs)
        {
            var runFolder = new RunFolder(run.Folder);
            if (runFolder.Finished)
            {
                output.WriteLine($"{run.Model}: finished earlier, skipped");
                continue;
            }
            bool resume = File.Exists(runFolder.LastCheckpoint);
            // A folder without a checkpoint holds nothing a resume could use (it died in its first epoch).
            if (writer && !resume && Directory.Exists(run.Folder)) Directory.Delete(run.Folder, recursive: true);
            output.WriteLine($"== {run.Model}{(resume ? " (resuming)" : "")}");
            var session = resume
                ? TrainingRun.Resume(new ResumeRequest(run.Folder, []), output, liveProgress, stop)
                : TrainingRun.Start(config with { Model = run.Model }, runFolder, output, liveProgress, stop);
            if (session.Stopped)
            {
                output.WriteLine($"study stopped; continue it with the same trainer study depth command and --out {folder} (finished runs are skipped, {run.Model} resumes)");
                return new StudyOutcome(runs, Stopped: true);
            }
        }
        if (!writer) return new StudyOutcome(runs, Stopped: false);
        var results = StudyReport.Collect(runs);
        StudyReport.WriteCurves(results, Path.Combine(folder, "curves.csv"));
        File.WriteAllText(Path.Combine(folder, "table.md"), StudyReport.Table(results));
        StudyFigure.Write(results, Path.Combine(folder, "figure.png"));
        output.WriteLine($"study folder: {folder} (figure.png, curves.csv, table.md; tensorboard --logdir {folder})");
        output.Write(StudyReport.Table(results));
        return new StudyOutcome(runs, Stopped: false);
    }
}
