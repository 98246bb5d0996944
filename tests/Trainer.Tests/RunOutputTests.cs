using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Trainer.Recipes.Sinks;
using Xunit;

namespace Trainer.Tests;

/// <summary>One short real run of `trainer train` (256 images, 2 epochs), shared by the output tests.</summary>
public sealed class ShortRunFixture : IDisposable
{
    public static readonly string[] Settings = ["data.subset=256", "train.batch_size=64", "train.epochs=2", "seed=5"];
    readonly TempDir _dir = new();
    public string RunFolder => _dir["run"];
    public Cli.Result Result { get; }

    public ShortRunFixture()
    {
        Result = Cli.Run(["train", "--out", RunFolder, .. Settings.SelectMany(s => new[] { "--set", s })]);
    }

    public void Dispose() => _dir.Dispose();
}

public class RunOutputTests(ShortRunFixture run) : IClassFixture<ShortRunFixture>
{
    [Fact]
    public void The_run_folder_holds_every_file_the_spec_names()
    {
        Assert.True(run.Result.ExitCode == 0, run.Result.Error);
        foreach (var file in new[] { "config.yaml", "metrics.csv", "summary.json", "checkpoints/last.ckpt", "checkpoints/best.ckpt" })
            Assert.True(File.Exists(Path.Combine(run.RunFolder, file)), $"{file} is missing");
        Assert.Single(Directory.GetFiles(run.RunFolder, "events.out.tfevents.*"));
        Assert.Contains("subset: 256", File.ReadAllText(Path.Combine(run.RunFolder, "config.yaml")));
    }

    [Fact]
    public void Metrics_csv_has_the_spec_columns_and_one_row_per_epoch()
    {
        var lines = File.ReadAllLines(Path.Combine(run.RunFolder, "metrics.csv"));
        Assert.Equal("epoch,step,lr,train_loss,train_top1,val_loss,val_top1,val_top5,seconds,rss_mb", lines[0]);
        var rows = CsvSink.Read(Path.Combine(run.RunFolder, "metrics.csv"));
        Assert.Equal([1, 2], rows.Select(r => r.Epoch));
        Assert.Equal([4L, 8], rows.Select(r => r.Step));
        Assert.All(rows, r =>
        {
            Assert.Equal(0.1, r.Lr, 12);
            Assert.InRange(r.ValTop1, 0, 1);
            Assert.InRange(r.ValTop5, r.ValTop1, 1);
            Assert.True(r.TrainLoss > 0 && r.Seconds > 0);
        });
    }

    [Fact]
    public void Event_files_decode_independently_and_hold_the_scalars_histograms_and_image_grid()
    {
        var psi = new ProcessStartInfo("python3", [Path.Combine(TestPaths.SharedData, "..", "tools", "read_tfevents.py"), run.RunFolder])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, process.StandardError.ReadToEnd());
        Assert.Contains("all CRCs OK", text);
        foreach (var tag in new[] { "train/loss", "train/top1", "val/loss", "val/top1", "val/top5", "lr" })
            Assert.Equal(2, CountOccurrences(text, $"'tag': '{tag}', 'simple_value'"));
        Assert.Contains("'tag': 'weights/layer3.2.conv2.weight', 'histo'", text);
        Assert.Contains("'tag': 'train/augmented_batch', 'image'", text);
        Assert.Contains("'png_magic': True", text);

        // The logged val/top1 of epoch 2 is the CSV's (as float32).
        var csv = CsvSink.Read(Path.Combine(run.RunFolder, "metrics.csv"));
        var line = text.Split('\n').Single(l => l.Contains("'step': 2,") && l.Contains("'val/top1'"));
        var logged = double.Parse(line.Split("'simple_value': ")[1].TrimEnd('}', ']', ' '), CultureInfo.InvariantCulture);
        Assert.Equal((float)csv[1].ValTop1, (float)logged);
    }

    static int CountOccurrences(string text, string part) => (text.Length - text.Replace(part, "").Length) / part.Length;

    [Fact]
    public void Summary_json_reports_final_and_best_metrics_parameters_time_and_device()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.RunFolder, "summary.json")));
        var root = doc.RootElement;
        Assert.Equal("resnet20", root.GetProperty("model").GetString());
        Assert.Equal(269_722, root.GetProperty("params").GetInt64());
        Assert.Equal("cpu", root.GetProperty("device").GetString());
        Assert.True(root.GetProperty("finished").GetBoolean());
        Assert.Equal(2, root.GetProperty("epochs").GetInt32());
        Assert.True(root.GetProperty("wall_seconds").GetDouble() > 0);
        var rows = CsvSink.Read(Path.Combine(run.RunFolder, "metrics.csv"));
        Assert.Equal(rows[^1].ValTop1, root.GetProperty("final").GetProperty("val_top1").GetDouble(), 9);
        Assert.Equal(rows.Max(r => r.ValTop1), root.GetProperty("best").GetProperty("val_top1").GetDouble(), 9);
    }

    [Fact]
    public void Eval_of_the_best_checkpoint_reproduces_its_validation_metrics()
    {
        var result = Cli.Run("eval", "--checkpoint", Path.Combine(run.RunFolder, "checkpoints", "best.ckpt"), "--json");
        Assert.True(result.ExitCode == 0, result.Error);
        using var doc = JsonDocument.Parse(result.Output);
        var rows = CsvSink.Read(Path.Combine(run.RunFolder, "metrics.csv"));
        var best = rows.MaxBy(r => r.ValTop1)!;
        Assert.Equal(1000, doc.RootElement.GetProperty("samples").GetInt64());
        Assert.Equal(best.ValTop1, doc.RootElement.GetProperty("top1").GetDouble(), 9);
        Assert.Equal(best.ValTop5, doc.RootElement.GetProperty("top5").GetDouble(), 9);
        Assert.Equal(best.ValLoss, doc.RootElement.GetProperty("loss").GetDouble(), 5);
    }

    [Fact]
    public void Resuming_after_one_epoch_matches_the_uninterrupted_run_exactly()
    {
        using var dir = new TempDir();
        var settings = ShortRunFixture.Settings.Select(s => s == "train.epochs=2" ? "train.epochs=1" : s).SelectMany(s => new[] { "--set", s }).ToArray();
        var first = Cli.Run(["train", "--out", dir["resumed"], .. settings]);
        Assert.True(first.ExitCode == 0, first.Error);
        var second = Cli.Run("train", "--out", dir["resumed"], "--resume", "--set", "train.epochs=2");
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Contains("resuming after epoch 1", second.Output);

        using var straight = Trainer.Recipes.Checkpoints.Checkpoint.Load(Path.Combine(run.RunFolder, "checkpoints", "last.ckpt"));
        using var resumed = Trainer.Recipes.Checkpoints.Checkpoint.Load(dir["resumed/checkpoints/last.ckpt"]);
        Assert.Equal(2, resumed.Meta.Epoch);
        Assert.Equal(straight.Meta.Step, resumed.Meta.Step);
        foreach (var (name, tensor) in straight.Model)
            Assert.True(tensor.eq(resumed.Model[name]).all().item<bool>(), $"model tensor {name} differs after resume");
        foreach (var (name, tensor) in straight.Optimizer)
            Assert.True(tensor.eq(resumed.Optimizer[name]).all().item<bool>(), $"momentum buffer {name} differs after resume");
        var a = CsvSink.Read(Path.Combine(run.RunFolder, "metrics.csv"));
        var b = CsvSink.Read(dir["resumed/metrics.csv"]);
        Assert.Equal(a.Select(r => r with { Seconds = 0, RssMb = 0 }), b.Select(r => r with { Seconds = 0, RssMb = 0 }));
        Assert.Equal(2, Directory.GetFiles(dir["resumed"], "events.out.tfevents.*").Length);
    }
}
