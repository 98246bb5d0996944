using System.Diagnostics;
using TorchSharp;
using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Optim;
using static TorchSharp.torch;

namespace Trainer.Recipes.Benchmarks;

/// <summary>What `trainer bench --model` measured; <c>StepMs</c> holds each timed training step.</summary>
public sealed record ModelBenchmarkResult(
    string Model, string Device, string Precision, int Batch, long[] Input, int Steps,
    double TrainImagesPerSecond, double InferImagesPerSecond, double StepMsMedian, double InferMsMedian,
    long PeakMemoryBytes, string PeakMemoryKind, double OverheadMs, double OverheadShare, double? PageFaultsPerStep,
    string ComputeDtype, double? LossScale, double[] StepMs, int Ranks = 1, double? AllreduceMsPerStep = null)
{
    /// <summary>The mean of the timed training steps (what the images/s figure divides by).</summary>
    public double TrainStepMsMean => StepMs.Average();
}

/// <summary>
/// Training and inference throughput of one model on synthetic data (the same training step as
/// the engine: forward, cross-entropy, backward, SGD with momentum and weight decay), after
/// warm-up steps; the median step time; peak memory; and an estimate of the framework's share of
/// a step. Inference runs the fp32 model (evaluation does too); mixed precision affects training.
/// The result names the type the training step computed in, read from the weights it ran with,
/// and fp16's loss scale at the end (halved once per overflowing step).
/// On several ranks (<c>collective</c>) each rank steps on its share of the batch and the
/// gradients are averaged as in training; the result adds the averaging's time per step.
/// </summary>
public static class ModelBenchmark
{
    public const int WarmupSteps = 3;

    public static ModelBenchmarkResult Run(string modelName, int batch, int steps, long[] input, Device device, Precision precision = Precision.Fp32, bool channelsLast = true,
        Distributed.ICollective? collective = null)
    {
        collective ??= Distributed.SingleProcess.Instance;
        if (batch % collective.Size != 0) throw new Data.BadInputException($"the batch {batch} does not split evenly over {collective.Size} ranks");
        int share = batch / collective.Size;
        var entry = ModelRegistry.Get(modelName);
        // On a GPU: what the device holds before the model (the CUDA context, other processes).
        long deviceBaseline = device.type == TorchSharp.DeviceType.CUDA ? CudaMemory.UsedBytes(device) : 0;
        using var model = entry.Create(new ModelOptions(NumClasses: entry.DefaultClasses));
        model.to(device);
        MixedPrecision? mixed = null;
        if (precision != Precision.Fp32)
        {
            var twin = entry.Create(new ModelOptions(NumClasses: entry.DefaultClasses));
            twin.to(device);
            mixed = new MixedPrecision(model, twin, precision);
        }
        using var _ = mixed;
        using var optimizer = new Sgd(ParameterGroup.Split(model, 1e-4, exemptBnAndBias: false), lr: 0.01, momentum: 0.9, dampening: 0, nesterov: false);
        if (device.type == TorchSharp.DeviceType.CPU) ProcessMemory.ResetPeak();

        Distributed.ModelSync.BroadcastState(collective, model);
        var averager = collective.Size > 1 ? new Distributed.GradientAverager(collective, model.parameters().ToList()) : null;
        Action? average = averager is null ? null : () => averager.Average(share, batch);
        long? faultsBefore = null;
        double averagingBefore = 0;
        var trainTimes = TimeSteps(model, optimizer, share, input, device, channelsLast, steps, train: true, entry.DefaultClasses, mixed,
            onTimedStart: () => { faultsBefore = ProcessMemory.MinorFaults(); averagingBefore = averager?.Seconds ?? 0; }, average);
        double? allreduceMs = averager is null ? null : (averager.Seconds - averagingBefore) * 1000 / steps;
        double? faultsPerStep = ProcessMemory.MinorFaults() - faultsBefore is long faults ? faults / (double)steps : null;
        var inferTimes = TimeSteps(model, optimizer, share, input, device, channelsLast, steps, train: false, entry.DefaultClasses, mixed);
        var (peak, kind) = PeakMemory(device, deviceBaseline);

        double stepMs = Median(trainTimes);
        double overheadMs = Math.Min(FrameworkOverheadMs(modelName, model, optimizer, input, device, channelsLast, steps, entry.DefaultClasses, mixed), stepMs);
        return new ModelBenchmarkResult(modelName, device.ToString(), precision.ToString().ToLowerInvariant(), batch, input, steps,
            batch / (trainTimes.Average() / 1000), batch / (inferTimes.Average() / 1000), stepMs, Median(inferTimes),
            peak, kind, overheadMs, overheadMs / stepMs, faultsPerStep,
            (mixed?.ComputeType ?? model.parameters().First().dtype).ToString().ToLowerInvariant(), mixed is { DynamicScale: true } ? mixed.LossScale : null, trainTimes,
            collective.Size, allreduceMs);
    }

    /// <summary>
    /// The framework's share of a step, bounded from above: the same step on two images (BatchNorm
    /// needs more than one value per channel) of the smallest input, where libtorch's kernels have
    /// almost nothing to do, is nearly all per-call cost: this tool's code and TorchSharp's managed
    /// side, but also libtorch's own dispatch, autograd bookkeeping, thread-pool fan-out and the
    /// optimizer's arithmetic, which do not shrink with the batch (hence an upper bound). Timed on
    /// one thread and on the benchmark's threads; the faster counts. scripts/framework-share.sh
    /// measures the share itself with perf.
    /// </summary>
    static double FrameworkOverheadMs(string modelName, nn.Module<Tensor, Tensor> model, Optimizer optimizer, long[] input, Device device, bool channelsLast, int steps, int classes, MixedPrecision? mixed)
    {
        long side = Math.Min(input[1], SmallestSide(modelName));
        double Tiny() => Median(TimeSteps(model, optimizer, 2, [input[0], side, side], device, channelsLast, Math.Max(5, steps), train: true, classes, mixed));
        double best = Tiny();
        int threads = get_num_threads();
        if (device.type != TorchSharp.DeviceType.CPU || threads == 1) return best;
        set_num_threads(1);
        try { return Math.Min(best, Tiny()); }
        finally { set_num_threads(threads); }
    }

    static long SmallestSide(string model) => model == "alexnet" ? 63 : 32;

    /// <summary>Milliseconds of each timed step, after <see cref="WarmupSteps"/> untimed ones.</summary>
    static double[] TimeSteps(nn.Module<Tensor, Tensor> model, Optimizer optimizer, int batch, long[] input, Device device, bool channelsLast, int steps, bool train, int classes, MixedPrecision? mixed,
        Action? onTimedStart = null, Action? gradientsReady = null)
    {
        using var x0 = randn([batch, .. input]);
        using var y0 = randint(0, classes, [batch], dtype: ScalarType.Int64);
        using var batchOnDevice = new Data.Loading.Batch(x0.alias(), y0.alias());
        var (x, y) = Inputs.ToDevice(batchOnDevice, device, channelsLast);
        using (x)
        using (y)
        {
            if (train) model.train(); else model.eval();
            var times = new double[steps];
            for (int i = -WarmupSteps; i < steps; i++)
            {
                if (i == 0) onTimedStart?.Invoke();
                var clock = Stopwatch.StartNew();
                using (var scope = NewDisposeScope())
                {
                    if (train)
                    {
                        var (_, loss) = TrainingStep.Run(model, optimizer, x, new Regularization.Targets(y), Regularization.Criterion.Plain, auxWeight: 0.3, mixed, gradientsReady);
                        loss.item<float>();   // wait for the step, as a training loop reading its loss does
                    }
                    else
                    {
                        using var _ = no_grad();
                        model.call(x).sum().item<float>();
                    }
                }
                if (i >= 0) times[i] = clock.Elapsed.TotalMilliseconds;
            }
            return times;
        }
    }

    internal static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /// <summary>
    /// CPU: the process's peak resident set size (VmHWM). CUDA: the device memory this run took
    /// beyond <paramref name="deviceBaseline"/>: libtorch's caching allocator keeps every block it
    /// reserved until the process ends (as PyTorch's does unless told to empty its cache), so the
    /// reading after the last step is the peak of what it reserved, cuDNN's and cuBLAS's workspaces
    /// included (what nvidia-smi shows for the process, less the CUDA context). -1 when unknown.
    /// </summary>
    static (long Bytes, string Kind) PeakMemory(Device device, long deviceBaseline)
    {
        if (device.type == TorchSharp.DeviceType.CUDA)
        {
            long used = CudaMemory.UsedBytes(device);
            return (used < 0 || deviceBaseline < 0 ? -1 : used - deviceBaseline, "cuda_peak_reserved");
        }
        return ProcessMemory.PeakResidentBytes() is long peak ? (peak, "process_peak_rss") : (ProcessMemory.ResidentBytes(), "process_rss");
    }
}

/// <summary>
/// Device memory in use, from the NVIDIA driver (libcuda.so.1, which every driver installs; the
/// CUDA runtime library of the CUDA libtorch package has a hashed file name). TorchSharp exposes
/// no allocator statistics.
/// </summary>
static class CudaMemory
{
    [System.Runtime.InteropServices.DllImport("libcuda.so.1", EntryPoint = "cuMemGetInfo_v2")]
    static extern int MemGetInfo(out nuint free, out nuint total);

    /// <summary>Bytes in use on <paramref name="device"/> (after its queued work finished), or -1.</summary>
    public static long UsedBytes(Device device)
    {
        try
        {
            // A tensor on the device makes libtorch create its context and make it this thread's current one, which the driver call reads.
            using (var touch = zeros(1, device: device)) cuda.synchronize(device);
            return MemGetInfo(out var free, out var total) == 0 ? (long)(total - free) : -1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return -1; }
    }
}
