using System.Globalization;
using Trainer.Recipes.Sinks;
using Xunit;

namespace Trainer.Tests;

/// <summary>The smoke preset of the degradation study, run once for the tests below.</summary>
public sealed class SmokeStudyFixture : IDisposable
{
    readonly TempDir _dir = new();
    public string Preset => Path.Combine(TestPaths.RepoRoot, "configs", "degradation-smoke.yaml");
    public string Folder => _dir["study"];
    public Cli.Result Result { get; }
    public string Scratch(string name) => _dir[name];

    public SmokeStudyFixture() => Result = Cli.Run("study", "depth", "--config", Preset, "--out", Folder);

    public void Dispose() => _dir.Dispose();
}

public class StudyTests(SmokeStudyFixture study) : IClassFixture<SmokeStudyFixture>
{
    static readonly string[] Runs = ["plain20", "plain32", "resnet20", "resnet32"];

    [Fact]
    public void The_smoke_study_writes_every_output_and_one_run_folder_per_net()
    {
        Assert.True(study.Result.ExitCode == 0, study.Result.Error);
        foreach (var file in new[] { "figure.png", "curves.csv", "table.md", "study.yaml" })
            Assert.True(File.Exists(Path.Combine(study.Folder, file)), $"{file} is missing");
        var png = File.ReadAllBytes(Path.Combine(study.Folder, "figure.png"));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png.Take(4));
        Assert.True(png.Length > 20_000, "the figure is suspiciously small");
        foreach (var run in Runs)
        {
            Assert.Single(Directory.GetFiles(Path.Combine(study.Folder, run), "events.out.tfevents.*"));
            Assert.Contains($"model: {run}", File.ReadAllText(Path.Combine(study.Folder, run, "config.yaml")));
        }
        var table = File.ReadAllText(Path.Combine(study.Folder, "table.md"));
        Assert.Contains("| resnet-20 | 20 | 269,722 |", table);
        Assert.Contains("| 8.75 |", table);          // the paper's Table 6 beside ResNet-20
        Assert.Contains("plain: 32 layers minus 20 layers", table);
    }

    [Fact]
    public void The_curves_csv_holds_one_curve_per_run_and_split()
    {
        var rows = File.ReadAllLines(Path.Combine(study.Folder, "curves.csv"));
        Assert.Equal("run,kind,depth,split,iteration,error_pct", rows[0]);
        var curves = rows.Skip(1).Select(r => r.Split(',')).GroupBy(f => (f[0], f[3])).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(8, curves.Count);
        foreach (var run in Runs)
        {
            // log.every_iterations 5 over 20 iterations; test error at both epoch ends (10 iterations each).
            Assert.Equal(["5", "10", "15", "20"], curves[(run, "train")].Select(f => f[4]));
            Assert.Equal(["10", "20"], curves[(run, "test")].Select(f => f[4]));
            var metrics = CsvSink.Read(Path.Combine(study.Folder, run, "metrics.csv"));
            Assert.Equal((1 - metrics[^1].ValTop1) * 100, double.Parse(curves[(run, "test")][^1][5], CultureInfo.InvariantCulture), 3);
        }
    }

    [Fact]
    public void A_rerun_skips_finished_runs()
    {
        var before = File.GetLastWriteTimeUtc(Path.Combine(study.Folder, "resnet32", "checkpoints", "last.ckpt"));
        var rerun = Cli.Run("study", "depth", "--config", study.Preset, "--out", study.Folder);
        Assert.True(rerun.ExitCode == 0, rerun.Error);
        foreach (var run in Runs) Assert.Contains($"{run}: finished earlier, skipped", rerun.Output);
        Assert.Equal(before, File.GetLastWriteTimeUtc(Path.Combine(study.Folder, "resnet32", "checkpoints", "last.ckpt")));
    }

    [Fact]
    public void An_interrupted_run_resumes_and_ends_where_an_uninterrupted_one_does()
    {
        // A study stopped after the first epoch of each run: only plain32 is left unfinished, as a
        // kill after its epoch-1 checkpoint leaves it (summary not finished, config of the full study).
        var folder = study.Scratch("interrupted");
        var first = Cli.Run("study", "depth", "--config", study.Preset, "--out", folder, "--set", "train.iterations=10");
        Assert.True(first.ExitCode == 0, first.Error);
        var run = Path.Combine(folder, "plain32");
        File.WriteAllText(Path.Combine(run, "config.yaml"), File.ReadAllText(Path.Combine(run, "config.yaml")).Replace("iterations: 10", "iterations: 20"));
        File.WriteAllText(Path.Combine(run, "summary.json"), File.ReadAllText(Path.Combine(run, "summary.json")).Replace("\"finished\": true", "\"finished\": false"));

        var second = Cli.Run("study", "depth", "--config", study.Preset, "--out", folder, "--set", "train.iterations=10");
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Contains("== plain32 (resuming)", second.Output);
        Assert.Contains("plain20: finished earlier, skipped", second.Output);
        Assert.Equal([10L, 20], CsvSink.Read(Path.Combine(run, "metrics.csv")).Select(r => r.Step));

        using var resumed = Trainer.Recipes.Checkpoints.Checkpoint.Load(Path.Combine(run, "checkpoints", "last.ckpt"));
        using var straight = Trainer.Recipes.Checkpoints.Checkpoint.Load(Path.Combine(study.Folder, "plain32", "checkpoints", "last.ckpt"));
        foreach (var (name, tensor) in straight.Model)
            Assert.True(tensor.eq(resumed.Model[name]).all().item<bool>(), $"{name} differs between the resumed and the uninterrupted run");
    }
}
