using System.Text.Json;
using Xunit;
using Xunit.Abstractions;

namespace Trainer.Tests;

/// <summary>`trainer bench --soak`: a few steps of the soak, with every field it reports (docs/reliability.md, "Long runs").</summary>
public class SoakBenchTests(ITestOutputHelper log)
{
    [Fact]
    public void Soak_mode_runs_a_few_steps_and_reports_memory_and_live_tensors()
    {
        // TorchSharp's live count is process-wide: earlier tests' tensors still waiting for the
        // finalizer are collected first, and the bound is above what stays alive in this process.
        long alive = Garbage.Settle();
        var run = Cli.Run("bench", "--soak", "--model", "lenet5", "--steps", "6", "--every", "2", "--warmup", "2", "--batch", "4", "--workers", "1", "--device", "cpu", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        using var doc = JsonDocument.Parse(run.Output);
        var r = doc.RootElement;
        Assert.Equal("lenet5", r.GetProperty("model").GetString());
        Assert.Equal(6, r.GetProperty("steps").GetInt32());
        Assert.Equal(4, r.GetProperty("batch").GetInt32());
        var samples = r.GetProperty("samples").EnumerateArray().ToList();
        Assert.Equal([2L, 4, 6], samples.Select(s => s.GetProperty("step").GetInt64()));
        foreach (var s in samples)
        {
            Assert.InRange(s.GetProperty("rss_bytes").GetInt64(), 50L << 20, 64L << 30);
            // At least LeNet-5's ten parameters and their momentum buffers.
            Assert.InRange(s.GetProperty("live_tensors").GetInt64(), 20, alive + 100_000);
            Assert.InRange(s.GetProperty("live_tensors_after_gc").GetInt64(), 20, alive + 100_000);
            Assert.True(s.GetProperty("managed_bytes").GetInt64() > 0);
            Assert.True(double.IsFinite(s.GetProperty("loss").GetDouble()));
        }
        Assert.True(r.GetProperty("rss_min_bytes").GetInt64() <= r.GetProperty("rss_max_bytes").GetInt64());
        Assert.InRange(r.GetProperty("rss_rise").GetDouble(), 0, 1);
        Assert.InRange(r.GetProperty("rss_change").GetDouble(), -1, 1);
        foreach (var verdict in new[] { "rss_within_2_percent", "live_tensors_flat" })
            Assert.Contains(r.GetProperty(verdict).ValueKind, new[] { JsonValueKind.True, JsonValueKind.False });
        Assert.True(r.GetProperty("images_per_s").GetDouble() > 0);

        var table = Cli.Run("bench", "--soak", "--model", "lenet5", "--steps", "2", "--every", "1", "--batch", "2", "--workers", "1", "--device", "cpu");
        Assert.True(table.ExitCode == 0, table.Error);
        Assert.Contains("live_tensors", table.Output);
        Assert.Contains("after warm-up", table.Output);
    }

    /// <summary>
    /// The verdicts themselves. LeNet-5 (so that it takes seconds) at batch 32: 94 steps an epoch,
    /// 400 steps, a reading every 10. Warm-up is the first 200 steps (two epochs and their
    /// validations, while glibc's per-thread heaps settle: docs/reliability.md), so the 21 readings
    /// judged span two more epoch ends, each with its validation and the loader's restart. In a
    /// process of its own, so the RSS is the soak's alone and no other test's tensors count.
    /// </summary>
    [Fact]
    public void After_warm_up_rss_stays_within_2_percent_and_live_tensors_stay_flat()
    {
        using var process = new TrainerProcess("bench", "--soak", "--model", "lenet5", "--steps", "400", "--every", "10", "--warmup", "200",
            "--batch", "32", "--workers", "2", "--device", "cpu", "--json");
        var (code, output, error) = process.Wait();
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        var samples = r.GetProperty("samples").EnumerateArray().ToList();
        Assert.Equal(40, samples.Count);
        Assert.Equal(21, samples.Count(s => s.GetProperty("step").GetInt64() >= 200));
        var readings = string.Join("; ", samples.Select(s =>
            $"{s.GetProperty("step")}: {s.GetProperty("rss_bytes").GetInt64() / 1048576.0:F1} MB, {s.GetProperty("live_tensors")}/{s.GetProperty("live_tensors_after_gc")} tensors"));
        log.WriteLine($"rss_rise {r.GetProperty("rss_rise")}, live tensors {r.GetProperty("live_tensors_min")}-{r.GetProperty("live_tensors_max")}: {readings}");
        Assert.True(r.GetProperty("rss_within_2_percent").GetBoolean(), $"RSS rose {r.GetProperty("rss_rise").GetDouble():P2} after warm-up: {readings}");
        Assert.True(r.GetProperty("live_tensors_flat").GetBoolean(), $"live tensors {r.GetProperty("live_tensors_min")}-{r.GetProperty("live_tensors_max")}: {readings}");
    }
}
