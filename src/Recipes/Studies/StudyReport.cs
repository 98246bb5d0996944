using System.Globalization;
using System.Text;
using System.Text.Json;
using Trainer.Recipes.Runs;
using Trainer.Recipes.Sinks;

namespace Trainer.Recipes.Studies;

/// <summary>A study run's curves (error in % against iterations) and final figures.</summary>
internal sealed record StudyResult(StudyRun Run, IReadOnlyList<(long Step, double Error)> Train, IReadOnlyList<(long Step, double Error)> Test,
    double FinalTrainError, double FinalTestError, long Parameters, double WallSeconds);

/// <summary>Reads the study's run folders and writes curves.csv and table.md.</summary>
internal static class StudyReport
{
    /// <summary>The ResNet paper's Table 6 CIFAR-10 test error (%) by depth.</summary>
    public static readonly IReadOnlyDictionary<int, double> PaperResNetTestError = new Dictionary<int, double>
    {
        [20] = 8.75, [32] = 7.51, [44] = 7.17, [56] = 6.97, [110] = 6.43, [1202] = 7.93,
    };

    public static List<StudyResult> Collect(IEnumerable<StudyRun> runs) => runs.Select(run =>
    {
        var folder = new RunFolder(run.Folder);
        var epochs = CsvSink.Read(folder.Metrics);
        var test = epochs.Select(r => (r.Step, (1 - r.ValTop1) * 100)).ToList();
        var train = File.Exists(folder.Iterations)
            ? IterationLogSink.Read(folder.Iterations).Select(r => (r.Step, (1 - r.Top1) * 100)).ToList()
            : epochs.Select(r => (r.Step, (1 - r.TrainTop1) * 100)).ToList();
        using var summary = JsonDocument.Parse(File.ReadAllText(folder.Summary));
        return new StudyResult(run, train, test, train[^1].Item2, test[^1].Item2,
            summary.RootElement.GetProperty("params").GetInt64(), summary.RootElement.GetProperty("wall_seconds").GetDouble());
    }).ToList();

    public static void WriteCurves(IEnumerable<StudyResult> results, string path)
    {
        var sb = new StringBuilder("run,kind,depth,split,iteration,error_pct\n");
        foreach (var r in results)
        {
            foreach (var (split, curve) in new[] { ("train", r.Train), ("test", r.Test) })
                foreach (var (step, error) in curve)
                    sb.Append(CultureInfo.InvariantCulture, $"{r.Run.Model},{r.Run.Kind},{r.Run.Depth},{split},{step},{error:F3}\n");
        }
        File.WriteAllText(path, sb.ToString());
    }

    public static string Table(IReadOnlyList<StudyResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| net | depth | parameters | final training error (%) | final test error (%) | wall time (s) | paper test error (%), Table 6 |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in results.OrderBy(r => r.Run.Kind).ThenBy(r => r.Run.Depth))
        {
            var paper = r.Run.Kind == "resnet" && PaperResNetTestError.TryGetValue(r.Run.Depth, out var e) ? e.ToString("F2", CultureInfo.InvariantCulture) : "-";
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Run.Kind}-{r.Run.Depth} | {r.Run.Depth} | {r.Parameters:N0} | {r.FinalTrainError:F1} | {r.FinalTestError:F1} | {r.WallSeconds:F0} | {paper} |"));
        }
        foreach (var kind in DepthStudy.Kinds)
        {
            var rows = results.Where(r => r.Run.Kind == kind).OrderBy(r => r.Run.Depth).ToList();
            if (rows.Count < 2) continue;
            var (shallow, deep) = (rows[0], rows[^1]);
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"\n{kind}: {deep.Run.Depth} layers minus {shallow.Run.Depth} layers: training error {deep.FinalTrainError - shallow.FinalTrainError:+0.0;-0.0} points, test error {deep.FinalTestError - shallow.FinalTestError:+0.0;-0.0} points"));
        }
        return sb.ToString();
    }
}
