using System.Text.Json;
using Xunit;

namespace Trainer.Tests;

/// <summary>`trainer bench --soak`: a few steps of the soak, with every field it reports (docs/reliability.md, "Long runs").</summary>
public class SoakBenchTests
{
    [Fact]
    public void Soak_mode_runs_a_few_steps_and_reports_memory_and_live_tensors()
    {
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
            Assert.InRange(s.GetProperty("live_tensors").GetInt64(), 20, 100_000);
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
}
