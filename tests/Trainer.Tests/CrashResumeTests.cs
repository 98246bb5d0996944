using System.Diagnostics;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Sinks;
using Xunit;

namespace Trainer.Tests;

/// <summary>The real trainer binary (trainer.dll beside the tests, via the project reference) as a child process that a test can kill or signal.</summary>
public sealed class TrainerProcess : IDisposable
{
    /// <summary>
    /// A tiny run: 96 images in batches of 16 (6 steps an epoch), 2 epochs, a mid-epoch checkpoint
    /// every 2 steps, a row of iterations.csv per step. Stochastic depth draws from torch's
    /// generator every step, so a resume that did not restore it exactly would end elsewhere.
    /// </summary>
    public static readonly string[] TinyRun =
    [
        "data.subset=96", "train.batch_size=16", "train.epochs=2", "data.val_subset=32", "checkpoint.every_steps=2",
        "log.histograms=false", "log.image_grid=false", "log.progress=false", "log.every_iterations=1",
        "model_options.stochastic_depth=0.2",
    ];

    readonly Process _process;
    readonly Task<string> _output, _error;

    public TrainerProcess(params string[] args) : this(new Dictionary<string, string>(), args) { }

    /// <summary>With <paramref name="environment"/> added to the child's environment.</summary>
    public TrainerProcess(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "trainer.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing");
        var psi = new ProcessStartInfo("dotnet", [dll, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        _process = Process.Start(psi)!;
        _output = _process.StandardOutput.ReadToEndAsync();
        _error = _process.StandardError.ReadToEndAsync();
    }

    /// <summary>`trainer train --out DIR` with the tiny run's settings.</summary>
    public static TrainerProcess Train(string runFolder) =>
        new(["train", "--out", runFolder, .. TinyRun.SelectMany(s => new[] { "--set", s })]);

    public static TrainerProcess Resume(string runFolder) => new("train", "--out", runFolder, "--resume");

    /// <summary>Waits until iterations.csv in <paramref name="runFolder"/> has at least <paramref name="steps"/> rows; fails the test if the process ends first.</summary>
    public void WaitForSteps(string runFolder, int steps)
    {
        var clock = Stopwatch.StartNew();
        while (IterationRows(runFolder) < steps)
        {
            if (_process.HasExited) Assert.Fail($"the run ended before step {steps}: {Wait().Error}");
            if (clock.Elapsed > TimeSpan.FromSeconds(120)) Assert.Fail($"step {steps} not reached in 120 s");
            Thread.Sleep(5);
        }
    }

    static int IterationRows(string runFolder)
    {
        var path = Path.Combine(runFolder, "iterations.csv");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return Math.Max(0, reader.ReadToEnd().Count(c => c == '\n') - 1);
        }
        catch (IOException) { return 0; }
    }

    /// <summary>SIGKILL: no handler runs, nothing is flushed.</summary>
    public void KillHard()
    {
        try { _process.Kill(); } catch (InvalidOperationException) { } // already gone
    }

    /// <summary>Sends signal <paramref name="signal"/> (2 SIGINT, 15 SIGTERM) with the system's kill command.</summary>
    public void Signal(int signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", [$"-{signal}", _process.Id.ToString()]) { RedirectStandardError = true })!;
        var error = kill.StandardError.ReadToEnd();
        kill.WaitForExit();
        Assert.True(kill.ExitCode == 0, $"kill -{signal} {_process.Id}: {error}");
    }

    public (int ExitCode, string Output, string Error) Wait(int seconds = 120)
    {
        if (!_process.WaitForExit(TimeSpan.FromSeconds(seconds)))
        {
            KillHard();
            Assert.Fail($"the trainer process did not end within {seconds} s");
        }
        _process.WaitForExit();
        return (_process.ExitCode, _output.Result, _error.Result);
    }

    public void Dispose()
    {
        KillHard();
        _process.Dispose();
    }
}

/// <summary>The tiny run once, uninterrupted: what every interrupted and resumed run must end with.</summary>
public sealed class UninterruptedTinyRun : IDisposable
{
    readonly TempDir _dir = new();
    public string RunFolder => _dir["run"];

    public UninterruptedTinyRun()
    {
        using var process = TrainerProcess.Train(RunFolder);
        var (code, _, error) = process.Wait();
        Assert.True(code == 0, error);
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// Crashes and stops of a real training process: SIGKILL at a random step then --resume, and
/// Ctrl-C / SIGTERM, must end with weights bit-identical to the uninterrupted run (CPU).
/// </summary>
public class CrashResumeTests(UninterruptedTinyRun straight) : IClassFixture<UninterruptedTinyRun>
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_run_killed_with_sigkill_at_a_random_step_resumes_to_bit_identical_weights(int seed)
    {
        using var dir = new TempDir();
        var run = dir["run"];
        // From step 3 on, the mid-epoch checkpoint of step 2 exists (the iteration row of step 3 is written after it).
        int killAt = 3 + new Random(seed).Next(9);
        using (var process = TrainerProcess.Train(run))
        {
            process.WaitForSteps(run, killAt);
            process.KillHard();
            Assert.Equal(137, process.Wait().ExitCode); // 128 + SIGKILL: it died mid-run
        }
        using (var checkpoint = Checkpoint.Load(Path.Combine(run, "checkpoints", "last.ckpt")))
            Assert.InRange(checkpoint.Meta.Step, killAt - 2, 11);
        using (var resumed = TrainerProcess.Resume(run))
        {
            var (code, output, error) = resumed.Wait();
            Assert.True(code == 0, error);
            Assert.Contains("resuming", output);
        }
        AssertSameEnd(straight.RunFolder, run);
    }

    [Theory]
    [InlineData(2, 130, 2)]   // SIGINT in epoch 1
    [InlineData(15, 143, 8)]  // SIGTERM in epoch 2
    public void A_stop_signal_saves_a_mid_epoch_checkpoint_prints_how_to_resume_and_the_resumed_run_ends_identical(int signal, int exitCode, int afterSteps)
    {
        using var dir = new TempDir();
        var run = dir["run"];
        using (var process = TrainerProcess.Train(run))
        {
            process.WaitForSteps(run, afterSteps);
            process.Signal(signal);
            var (code, output, error) = process.Wait();
            Assert.True(code == exitCode, $"exit code {code}: {error}");
            var last = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("stopped at step"));
            Assert.EndsWith($"resume with: trainer train --out {run} --resume", last);
            Assert.Contains("stopping after the step under way", error);
        }
        using (var checkpoint = Checkpoint.Load(Path.Combine(run, "checkpoints", "last.ckpt")))
        {
            Assert.NotNull(checkpoint.Meta.InEpoch);
            Assert.InRange(checkpoint.Meta.InEpoch!.Batches, 1, 5);
            Assert.Equal(checkpoint.Meta.Epoch * 6 + checkpoint.Meta.InEpoch.Batches, checkpoint.Meta.Step);
            Assert.True(checkpoint.Meta.Step >= afterSteps);
        }
        using (var resumed = TrainerProcess.Resume(run))
        {
            var (code, output, error) = resumed.Wait();
            Assert.True(code == 0, error);
            Assert.Contains("resuming at step", output);
        }
        AssertSameEnd(straight.RunFolder, run);
    }

    [Fact]
    public void A_second_ctrl_c_quits_at_once()
    {
        using var dir = new TempDir();
        var run = dir["run"];
        using var process = TrainerProcess.Train(run);
        process.WaitForSteps(run, 1);
        process.Signal(2);
        process.Signal(2);
        var (code, output, error) = process.Wait();
        Assert.Equal(130, code);
        Assert.Contains("quitting at once", error);
        Assert.DoesNotContain("done:", output);
    }

    /// <summary>Same weights, optimizer state, position and per-epoch metrics (bar wall time and memory).</summary>
    static void AssertSameEnd(string expectedRun, string actualRun)
    {
        using var expected = Checkpoint.Load(Path.Combine(expectedRun, "checkpoints", "last.ckpt"));
        using var actual = Checkpoint.Load(Path.Combine(actualRun, "checkpoints", "last.ckpt"));
        Assert.Equal(expected.Meta.Epoch, actual.Meta.Epoch);
        Assert.Equal(expected.Meta.Step, actual.Meta.Step);
        Assert.Equal(expected.Model.Keys.Order(), actual.Model.Keys.Order());
        foreach (var (name, tensor) in expected.Model)
            Assert.True(tensor.eq(actual.Model[name]).all().item<bool>(), $"model tensor {name} differs from the uninterrupted run");
        Assert.Equal(expected.Optimizer.Keys.Order(), actual.Optimizer.Keys.Order());
        foreach (var (name, tensor) in expected.Optimizer)
            Assert.True(tensor.eq(actual.Optimizer[name]).all().item<bool>(), $"optimizer state {name} differs from the uninterrupted run");
        var a = CsvSink.Read(Path.Combine(expectedRun, "metrics.csv")).Select(r => r with { Seconds = 0, RssMb = 0 });
        var b = CsvSink.Read(Path.Combine(actualRun, "metrics.csv")).Select(r => r with { Seconds = 0, RssMb = 0 });
        Assert.Equal(a, b);
    }
}
