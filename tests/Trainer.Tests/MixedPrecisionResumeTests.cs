using System.Globalization;
using Trainer.Recipes.Checkpoints;
using Xunit;

namespace Trainer.Tests;

/// <summary>The mixed-precision tiny run in bf16, uninterrupted.</summary>
public sealed class UninterruptedBf16Run() : UninterruptedTinyRun(MixedPrecisionResumeTests.Bf16);

/// <summary>The mixed-precision tiny run in fp16, uninterrupted.</summary>
public sealed class UninterruptedFp16Run() : UninterruptedTinyRun(MixedPrecisionResumeTests.Fp16);

/// <summary>
/// `trainer train --set train.precision=bf16|fp16` through the real CLI, killed with SIGKILL
/// mid-run and resumed: it must end as the uninterrupted run of the same precision, bit for bit,
/// and an fp16 run must get its dynamic loss scale back.
/// </summary>
public class MixedPrecisionResumeTests(UninterruptedBf16Run bf16, UninterruptedFp16Run fp16)
    : IClassFixture<UninterruptedBf16Run>, IClassFixture<UninterruptedFp16Run>
{
    /// <summary>
    /// Over the tiny run: 8 images in batches of 2 (4 steps an epoch, 8 in all; low-precision
    /// convolutions are emulated on most CPUs, so slow) at a rate batches of 2 can take.
    /// </summary>
    static readonly string[] Small = ["data.subset=8", "train.batch_size=2", "optimizer.lr=0.02"];
    public static readonly string[] Bf16 = [.. Small, "train.precision=bf16"];

    const double InitialScale = 128;
    /// <summary>
    /// A small start scale that doubles every 2 good steps (far below the float16 overflow seen
    /// here at 65536), so every checkpoint holds a scale and a good-step count a fresh scaler
    /// would not have, wherever the kill lands: losing either on resume changes the end.
    /// </summary>
    public static readonly string[] Fp16 = [.. Small, "train.precision=fp16", $"train.loss_scale={InitialScale}", "train.loss_scale_growth_interval=2"];

    [Fact]
    public void A_bf16_run_killed_with_sigkill_resumes_to_bit_identical_weights_optimizer_state_and_metrics()
    {
        using var dir = new TempDir();
        var run = dir["run"];
        var killed = KillAndResume(run, Bf16);
        Assert.Equal(1, killed.LossScale);   // bf16 needs no loss scaling
        CrashResumeTests.AssertSameEnd(bf16.RunFolder, run);
        Assert.Equal(File.ReadAllText(Iterations(bf16.RunFolder)), File.ReadAllText(Iterations(run)));
    }

    [Fact]
    public void An_fp16_run_killed_with_sigkill_resumes_with_its_loss_scale_to_bit_identical_weights_optimizer_state_and_metrics()
    {
        var straight = LossScales(fp16.RunFolder);
        // A scale that never moved would hide one lost on resume.
        Assert.True(straight.Values.Distinct().Count() >= 3, $"the loss scale hardly moved: {string.Join(", ", straight.Values)}");

        using var dir = new TempDir();
        var run = dir["run"];
        var killed = KillAndResume(run, Fp16);
        Assert.Equal(straight[killed.Step], killed.LossScale);   // saved: the uninterrupted run's scale after that step
        Assert.NotEqual(InitialScale, killed.LossScale);
        Assert.True(killed.LossScaleGoodSteps > 0, $"checkpoint of step {killed.Step}: no good steps counted");

        Assert.Equal(straight, LossScales(run));                 // restored: every later step's scale as uninterrupted
        CrashResumeTests.AssertSameEnd(fp16.RunFolder, run);     // with the final scale and good-step count
        Assert.Equal(File.ReadAllText(Iterations(fp16.RunFolder)), File.ReadAllText(Iterations(run)));
    }

    /// <summary>Trains with <paramref name="settings"/>, SIGKILLs it after its third step, resumes it to the end; the killed run's last checkpoint.</summary>
    static CheckpointMeta KillAndResume(string run, string[] settings)
    {
        using (var process = TrainerProcess.Train(run, settings))
        {
            // Row 3 is written after the checkpoint of step 2; five of the eight steps are left.
            process.WaitForSteps(run, 3);
            process.KillHard();
            Assert.Equal(137, process.Wait().ExitCode);   // 128 + SIGKILL: it died mid-run
        }
        CheckpointMeta killed;
        using (var checkpoint = Checkpoint.Load(Path.Combine(run, "checkpoints", "last.ckpt")))
            killed = checkpoint.Meta;
        Assert.InRange(killed.Step, 2, 6);
        using (var resumed = TrainerProcess.Resume(run))
        {
            var (code, output, error) = resumed.Wait();
            Assert.True(code == 0, error);
            Assert.Contains("resuming", output);
        }
        return killed;
    }

    static string Iterations(string run) => Path.Combine(run, "iterations.csv");

    /// <summary>The loss_scale column of an fp16 run's iterations.csv, by step.</summary>
    static Dictionary<long, double> LossScales(string run)
    {
        var lines = File.ReadAllLines(Iterations(run));
        int column = Array.IndexOf(lines[0].Split(','), "loss_scale");
        Assert.True(column >= 0, $"{Iterations(run)} has no loss_scale column: {lines[0]}");
        return lines.Skip(1).Select(l => l.Split(','))
            .ToDictionary(f => long.Parse(f[0], CultureInfo.InvariantCulture), f => double.Parse(f[column], CultureInfo.InvariantCulture));
    }
}
