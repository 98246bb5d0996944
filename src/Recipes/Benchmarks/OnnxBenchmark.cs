using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Trainer.Models;
using Trainer.Models.Onnx;
using static TorchSharp.torch;

namespace Trainer.Recipes.Benchmarks;

/// <summary>One runtime's inference figures: throughput, median and 90th-percentile latency of a batch, and memory.</summary>
/// <param name="ImagesPerSecond">Images a second over the timed batches.</param>
/// <param name="LatencyMsMedian">Median milliseconds a batch.</param>
/// <param name="LatencyMsP90">90th-percentile milliseconds a batch.</param>
/// <param name="MemoryBytes">Peak resident memory during the phase above the reading just before the model was loaded (its weights, its arena, its activations).</param>
public sealed record InferenceFigures(double ImagesPerSecond, double LatencyMsMedian, double LatencyMsP90, long MemoryBytes);

/// <summary>What `trainer bench --model NAME --onnx` measured: TorchSharp's evaluation and ONNX Runtime on the same model, input and threads.</summary>
public sealed record OnnxBenchmarkResult(string Model, int Batch, long[] Input, int Steps, int Threads, long OnnxBytes, InferenceFigures TorchSharp, InferenceFigures OnnxRuntime)
{
    /// <summary>ONNX Runtime's images/s over TorchSharp's (above 1: ONNX Runtime is faster).</summary>
    public double ThroughputRatio => OnnxRuntime.ImagesPerSecond / TorchSharp.ImagesPerSecond;
}

/// <summary>
/// Inference of one model in one process, TorchSharp first (evaluation mode, no_grad, channels-last
/// input, as `trainer eval` runs it), then ONNX Runtime's CPU provider on the model `trainer export` writes (BatchNorm
/// as nodes, which ONNX Runtime folds at load), on the same random input, each on
/// <c>threads</c> intra-op threads, after warm-up runs. Memory is each phase's peak RSS above the
/// reading before it loaded the model: libtorch itself is loaded before either phase and counted
/// in neither; ONNX Runtime's library loads inside its phase.
/// </summary>
public static class OnnxBenchmark
{
    const int Warmup = 3;

    public static OnnxBenchmarkResult Run(string modelName, int batch, int steps, int threads, long[]? inputOverride = null)
    {
        var entry = ModelRegistry.Get(modelName);
        long[] input = inputOverride ?? entry.NativeInput;
        set_num_threads(threads);
        using var x = randn([batch, .. input], generator: new Generator(5));
        var pixels = x.contiguous().data<float>().ToArray();

        Settle();
        long before = StartPhase();
        byte[] onnx;
        double[] torchTimes;
        // Channels-last memory, as `trainer eval` feeds the model by default (train.channels_last).
        using var xLast = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        using (var model = entry.Create())
        {
            model.eval();
            torchTimes = Time(steps, () =>
            {
                using var _ = no_grad();
                using var logits = model.call(xLast);
                logits.data<float>()[0].ToString();
            });
            onnx = OnnxModelWriter.Build(model, modelName, new OnnxWriteOptions(input)).ToByteArray();
        }
        var torchFigures = Figures(torchTimes, batch, before);

        Settle();
        before = StartPhase();
        double[] ortTimes;
        using (var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 })
        using (var session = new InferenceSession(onnx, options))
        {
            var tensor = new DenseTensor<float>(pixels, [batch, .. input.Select(d => (int)d)]);
            var inputs = new[] { NamedOnnxValue.CreateFromTensor(OnnxModelWriter.InputName, tensor) };
            ortTimes = Time(steps, () =>
            {
                using var results = session.Run(inputs);
                results.First().AsTensor<float>().GetValue(0).ToString();
            });
        }
        return new OnnxBenchmarkResult(modelName, batch, input, steps, threads, onnx.Length, torchFigures, Figures(ortTimes, batch, before));
    }

    static long StartPhase()
    {
        ProcessMemory.ResetPeak();
        return ProcessMemory.ResidentBytes();
    }

    static void Settle()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    static double[] Time(int steps, Action run)
    {
        for (int i = 0; i < Warmup; i++) run();
        var times = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            var clock = Stopwatch.StartNew();
            run();
            times[i] = clock.Elapsed.TotalMilliseconds;
        }
        return times;
    }

    static InferenceFigures Figures(double[] times, int batch, long rssBefore)
    {
        var sorted = times.Order().ToArray();
        double median = ModelBenchmark.Median(times);
        double p90 = sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(0.9 * sorted.Length) - 1)];
        long peak = ProcessMemory.PeakResidentBytes() ?? ProcessMemory.ResidentBytes();
        return new InferenceFigures(batch / (times.Average() / 1000), median, p90, Math.Max(0, peak - rssBefore));
    }
}
