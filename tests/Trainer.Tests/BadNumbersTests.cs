using System.Text.Json;
using System.Text.RegularExpressions;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Sinks;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>
/// NaN and infinite numbers never train on: a real divergence (an absurd learning rate on the
/// tiny run) stops the run with one line and exit code 3, or rolls back at a lower rate.
/// </summary>
public class BadNumbersTests
{
    /// <summary>The tiny run of <see cref="TrainerProcess.TinyRun"/> with a learning rate that diverges within a few steps.</summary>
    static string[] Train(string runFolder, params string[] settings) =>
        ["train", "--out", runFolder, .. TrainerProcess.TinyRun.Append("optimizer.lr=1e8").Concat(settings).SelectMany(s => new[] { "--set", s })];

    static bool AllFinite(Checkpoint c) => c.Model.Values.Where(t => t.is_floating_point()).All(t => t.isfinite().all().item<bool>());

    [Fact]
    public void A_diverging_run_stops_with_one_line_naming_step_and_epoch_and_last_ckpt_keeps_the_last_good_state()
    {
        using var dir = new TempDir();
        var result = Cli.Run(Train(dir["run"]));
        Assert.Equal(3, result.ExitCode);
        var line = Assert.Single(result.ErrorLines);
        var match = Regex.Match(line, @"^trainer: error: training diverged at step (\d+) \(epoch ([12]), batch (\d) of 6\): (the loss is|the gradient norm is|the weights hold) ");
        Assert.True(match.Success, line);
        Assert.Contains("train.on_nan: rollback", line);
        long badStep = long.Parse(match.Groups[1].Value);
        Assert.Equal((int.Parse(match.Groups[2].Value) - 1) * 6 + int.Parse(match.Groups[3].Value), badStep);

        var last = Path.Combine(dir["run"], "checkpoints", "last.ckpt");
        if (File.Exists(last))
        {
            using var checkpoint = Checkpoint.Load(last);
            Assert.True(checkpoint.Meta.Step < badStep);
            Assert.True(AllFinite(checkpoint), "last.ckpt holds NaN or infinite weights");
            Assert.Contains($"holds the last good state (step {checkpoint.Meta.Step})", line);
        }
        else Assert.Contains("no checkpoint had been written yet", line);
        if (File.Exists(Path.Combine(dir["run"], "summary.json")))
        {
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["run"], "summary.json")));
            Assert.False(summary.RootElement.GetProperty("finished").GetBoolean());
        }
    }

    [Fact]
    public void Rollback_goes_back_to_the_last_good_state_at_a_lower_rate_that_a_resume_keeps()
    {
        using var dir = new TempDir();
        // A factor of 1e-9 turns the absurd 1e8 into 0.1, so the run recovers and finishes. Without
        // mid-epoch checkpoints the last good state is the start (a state after a step at 1e8 is
        // finite but ruined, and would diverge again at any rate).
        var result = Cli.Run(Train(dir["run"], "train.on_nan=rollback", "train.nan_lr_factor=1e-9", "checkpoint.every_steps=0"));
        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Matches(@"step \d \(epoch 1\): the .*; rolled back to step 0, learning rate now x1E-09 of the schedule's \(rollback 1 of 3\)", result.Output);

        var last = Path.Combine(dir["run"], "checkpoints", "last.ckpt");
        int rollbacks;
        using (var checkpoint = Checkpoint.Load(last))
        {
            rollbacks = checkpoint.Meta.NanRollbacks;
            Assert.InRange(rollbacks, 1, 3);
            Assert.Equal(Math.Pow(1e-9, rollbacks), checkpoint.Meta.LrScale, 1e-20);
            Assert.True(AllFinite(checkpoint));
        }
        var rows = CsvSink.Read(Path.Combine(dir["run"], "metrics.csv"));
        Assert.Equal(2, rows.Count);
        Assert.Equal(1e8 * Math.Pow(1e-9, rollbacks), rows[^1].Lr, 1e-9);

        var resumed = Cli.Run("train", "--out", dir["run"], "--resume", "--set", "train.epochs=3");
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        rows = CsvSink.Read(Path.Combine(dir["run"], "metrics.csv"));
        Assert.Equal(3, rows.Count);
        Assert.Equal(rows[1].Lr, rows[2].Lr, 1e-12);
    }

    [Fact]
    public void Rollbacks_end_after_nan_max_rollbacks_with_one_line_and_exit_code_3()
    {
        using var dir = new TempDir();
        // Halving 1e8 twice still diverges.
        var result = Cli.Run(Train(dir["run"], "train.on_nan=rollback", "train.nan_max_rollbacks=2"));
        Assert.Equal(3, result.ExitCode);
        var line = Assert.Single(result.ErrorLines);
        Assert.Matches(@"^trainer: error: training diverged at step \d+ \(epoch \d, batch \d of 6\): .*, after 2 rollback\(s\) \(train.nan_max_rollbacks: 2\)", line);
        Assert.Contains("(rollback 1 of 2)", result.Output);
        Assert.Contains("(rollback 2 of 2)", result.Output);
        Assert.Contains("learning rate now x0.25 of the schedule's", result.Output);
    }

    [Fact]
    public void The_step_check_names_a_nan_loss_an_infinite_gradient_norm_and_non_finite_weights()
    {
        using var scope = NewDisposeScope();
        var good = tensor(1.5f);
        var (loss, problem, alongside) = StepCheck.Read(good, tensor(3f), tensor(true), tensor(new[] { 7f, 9f }));
        Assert.Equal((1.5f, (string?)null), (loss, problem));
        Assert.Equal([7f, 9f], alongside);   // read in the same transfer, after the checks
        Assert.Equal("the weights hold NaN or infinite values", StepCheck.Read(good, null, tensor(false), tensor(new[] { 7f, 9f })).Problem);
        Assert.Equal("the loss is NaN", StepCheck.Read(tensor(float.NaN), tensor(3f), null).Problem);
        Assert.Equal("the loss is +inf", StepCheck.Read(tensor(float.PositiveInfinity), null, null).Problem);
        Assert.Equal("the gradient norm is +inf", StepCheck.Read(good, tensor(float.PositiveInfinity), tensor(true)).Problem);
        Assert.Equal("the weights hold NaN or infinite values", StepCheck.Read(good, tensor(3f), tensor(false)).Problem);

        using var linear = nn.Linear(3, 2);
        Assert.True(StepCheck.WeightsFinite(linear).item<bool>());
        using (no_grad()) linear.weight![0, 1].fill_(float.NaN);
        Assert.False(StepCheck.WeightsFinite(linear).item<bool>());
    }

    [Fact]
    public void The_new_keys_are_checked()
    {
        using var dir = new TempDir();
        foreach (var (setting, named) in new[]
        {
            ("checkpoint.every_steps=-1", "checkpoint.every_steps"), ("train.nan_lr_factor=1", "train.nan_lr_factor"),
            ("train.nan_max_rollbacks=-2", "train.nan_max_rollbacks"), ("train.on_nan=ignore", "train.on_nan"),
        })
        {
            var result = Cli.Run("train", "--out", dir["run"], "--set", setting);
            Assert.Equal(2, result.ExitCode);
            Assert.Contains(named, Assert.Single(result.ErrorLines));
        }
        Assert.False(Directory.Exists(dir["run"]));
    }
}
