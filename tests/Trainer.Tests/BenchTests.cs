using System.Text.Json;
using Xunit;

namespace Trainer.Tests;

public class BenchTests
{
    [Fact]
    public void Bench_json_reports_every_field_with_plausible_values()
    {
        var run = Cli.Run("bench", "--model", "resnet20", "--batch", "8", "--steps", "3", "--input", "3x16x16", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        using var doc = JsonDocument.Parse(run.Output);
        var r = doc.RootElement;
        Assert.Equal("resnet20", r.GetProperty("model").GetString());
        Assert.Equal("cpu", r.GetProperty("device").GetString());
        Assert.Equal(8, r.GetProperty("batch").GetInt32());
        Assert.Equal([3, 16, 16], r.GetProperty("input").EnumerateArray().Select(e => e.GetInt32()));
        double train = r.GetProperty("train_images_per_s").GetDouble(), infer = r.GetProperty("infer_images_per_s").GetDouble();
        double stepMs = r.GetProperty("step_ms_median").GetDouble();
        Assert.InRange(train, 1, 1e6);
        Assert.InRange(infer, 1, 1e7);
        // Throughput and step time describe the same steps: batch / their mean, and their median.
        // (Not mean against median: on a busy machine one slow step of three moves the mean at will.)
        var steps = r.GetProperty("step_ms").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(3, steps.Length);
        Assert.All(steps, ms => Assert.True(ms > 0));
        Assert.InRange(train / (8 / (steps.Average() / 1000)), 0.999, 1.001);
        Assert.Equal(steps.Order().ElementAt(1), stepMs);
        // Peak RSS: at least the loaded libtorch (tens of MB), at most this machine's memory.
        Assert.InRange(r.GetProperty("peak_memory_bytes").GetInt64(), 50L << 20, 64L << 30);
        Assert.Equal("process_peak_rss", r.GetProperty("peak_memory_kind").GetString());
        Assert.InRange(r.GetProperty("overhead_share").GetDouble(), 1e-6, 1.0);
        Assert.True(r.GetProperty("overhead_ms").GetDouble() <= stepMs + 1e-9);
        Assert.InRange(r.GetProperty("page_faults_per_step").GetDouble(), 0, 1e6);
        Assert.Equal("fp32", r.GetProperty("precision").GetString());
        Assert.Equal("float32", r.GetProperty("compute_dtype").GetString());
        Assert.Equal(JsonValueKind.Null, r.GetProperty("loss_scale").ValueKind);
    }

    [Theory]
    [InlineData("bf16", "bfloat16")]
    [InlineData("fp16", "float16")]
    public void Bench_in_mixed_precision_names_it_and_trains_in_that_type(string precision, string dtype)
    {
        // LeNet-5: low-precision convolutions are emulated on most CPUs, so the smallest net keeps this quick.
        var run = Cli.Run("bench", "--model", "lenet5", "--batch", "4", "--steps", "2", "--precision", precision, "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        using var doc = JsonDocument.Parse(run.Output);
        var r = doc.RootElement;
        Assert.Equal(precision, r.GetProperty("precision").GetString());
        Assert.Equal(dtype, r.GetProperty("compute_dtype").GetString());   // read from the weights the step ran with
        Assert.InRange(r.GetProperty("train_images_per_s").GetDouble(), 0.1, 1e6);
        Assert.InRange(r.GetProperty("step_ms_median").GetDouble(), 1e-3, 1e6);
        Assert.InRange(r.GetProperty("infer_images_per_s").GetDouble(), 0.1, 1e7);
        var scale = r.GetProperty("loss_scale");
        if (precision == "bf16") Assert.Equal(JsonValueKind.Null, scale.ValueKind);
        else
        {
            // Dynamic scaling from 65536: halved once per overflowing step, never grown in so few steps.
            double s = scale.GetDouble();
            Assert.InRange(s, 1, 65536);
            Assert.Equal(s, Math.Pow(2, Math.Round(Math.Log2(s))));
        }
    }

    [Fact]
    public void Bench_of_an_unknown_model_or_a_bad_input_is_bad_input()
    {
        var unknown = Cli.Run("bench", "--model", "resnet21");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("resnet20", unknown.Error);
        var input = Cli.Run("bench", "--model", "resnet20", "--input", "3x32");
        Assert.Equal(2, input.ExitCode);
        Assert.Single(input.ErrorLines);
    }
}
