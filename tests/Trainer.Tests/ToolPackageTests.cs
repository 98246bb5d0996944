using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace Trainer.Tests;

/// <summary>
/// The `trainer` .NET tool: packed from the build this suite already made, installed into a
/// temporary tool path, and run from a folder outside the repository: `trainer models` and a
/// two-step `trainer train` on the embedded default, whose run folder must be complete.
/// </summary>
public sealed class ToolPackageTests(ITestOutputHelper output)
{
    [Fact]
    public void The_dotnet_tool_installs_and_trains_from_any_folder()
    {
        using var dir = new TempDir();
        var clock = Stopwatch.StartNew();
        Command.Run("dotnet", ["pack", Path.Combine(TestPaths.RepoRoot, "src", "Cli"), "-c", "Release", "--no-build", "-o", dir["packages"]], TestPaths.RepoRoot);
        var package = Directory.GetFiles(dir["packages"], "Trainer.Cli.*.nupkg").Single();
        var version = Path.GetFileNameWithoutExtension(package)["Trainer.Cli.".Length..];
        output.WriteLine($"{Path.GetFileName(package)}: {new FileInfo(package).Length / 1e6:F0} MB, packed in {clock.Elapsed.TotalSeconds:F0} s");

        Command.Run("dotnet", ["tool", "install", "Trainer.Cli", "--tool-path", dir["tools"], "--add-source", dir["packages"], "--version", version, "--ignore-failed-sources"], dir.Path);
        var trainer = dir["tools/trainer"];
        var backend = Directory.GetFiles(dir["tools"], "torch-backend.txt", SearchOption.AllDirectories).Single();
        Assert.Equal("cpu", File.ReadAllText(backend).Trim());
        var elsewhere = Directory.CreateDirectory(dir["elsewhere"]).FullName;

        var models = Command.Run(trainer, ["models"], elsewhere);
        Assert.Contains("resnet20", models);
        Assert.Contains("efficientnet_b0", models);

        Command.Run(trainer, ["train", "--set", "train.iterations=2", "--set", "data.subset=64", "--set", "data.val_subset=32", "--set", "train.batch_size=32",
            "--set", "log.progress=false", "--set", "log.histograms=false"], elsewhere);
        var run = Directory.GetDirectories(Path.Combine(elsewhere, "runs")).Single();
        var metrics = File.ReadAllLines(Path.Combine(run, "metrics.csv"));
        Assert.StartsWith("epoch,step,lr,train_loss", metrics[0]);
        Assert.Equal(2, metrics.Length);   // one epoch row: the two steps
        Assert.Contains(",2,", metrics[1]);
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "last.ckpt")));
        Assert.NotEmpty(Directory.GetFiles(run, "events.out.tfevents.*"));
        output.WriteLine($"installed and trained from {elsewhere} in {clock.Elapsed.TotalSeconds:F0} s; {metrics[1]}");
    }
}
