using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Sinks;
using Xunit;

namespace Trainer.Tests;

/// <summary>The tiny run once, uninterrupted: what every interrupted and resumed run must end with.</summary>
public class UninterruptedTinyRun : IDisposable
{
    readonly TempDir _dir = new();
    public string RunFolder => _dir["run"];

    public UninterruptedTinyRun() : this([]) { }

    /// <summary>With <paramref name="settings"/> over the tiny run's.</summary>
    protected UninterruptedTinyRun(string[] settings)
    {
        using var process = TrainerProcess.Train(RunFolder, settings);
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
        // At most step 8 of 12: SIGKILL lands within milliseconds of the row, and at least four steps,
        // a validation and the final checkpoint are left, so it always meets a run under way.
        int killAt = 3 + new Random(seed).Next(6);
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
    // After the epoch's first step, so that four steps are left for the signal to land in mid-epoch.
    [InlineData(2, 130, 1)]   // SIGINT in epoch 1
    [InlineData(15, 143, 7)]  // SIGTERM in epoch 2
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
        // The seam keeps the stopped process alive until the second signal: a tiny run may otherwise
        // finish its step, save and end before the second arrives.
        using var process = TrainerProcess.Train(new Dictionary<string, string> { [Trainer.Cli.StopSignals.AwaitSecondVariable] = "1" }, run);
        process.WaitForSteps(run, 1);
        process.Signal(2);
        // Two signals sent before the first is delivered arrive as one: send the second only once the
        // trainer has handled the first.
        process.WaitForError("Ctrl-C: stopping after the step under way");
        process.Signal(2);
        var (code, output, error) = process.Wait();
        Assert.Equal(130, code);
        Assert.Contains("quitting at once", error);
        // The second signal ended the process, not the end of the seam's wait.
        Assert.DoesNotContain(Trainer.Cli.StopSignals.AwaitSecondVariable, error);
        Assert.DoesNotContain("done:", output);
    }

    /// <summary>Same weights, optimizer state, position, fp16 loss scale and per-epoch metrics (bar wall time and memory).</summary>
    internal static void AssertSameEnd(string expectedRun, string actualRun)
    {
        using var expected = Checkpoint.Load(Path.Combine(expectedRun, "checkpoints", "last.ckpt"));
        using var actual = Checkpoint.Load(Path.Combine(actualRun, "checkpoints", "last.ckpt"));
        Assert.Equal(expected.Meta.Epoch, actual.Meta.Epoch);
        Assert.Equal(expected.Meta.Step, actual.Meta.Step);
        Assert.Equal(expected.Meta.LossScale, actual.Meta.LossScale);
        Assert.Equal(expected.Meta.LossScaleGoodSteps, actual.Meta.LossScaleGoodSteps);
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
