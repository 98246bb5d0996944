using System.Globalization;
using System.Text.Json;
using Trainer.Data;
using Trainer.Models;
using Trainer.Recipes.Benchmarks;
using Trainer.Recipes.Config;
using Trainer.Recipes.Runs;

namespace Trainer.Cli.Verbs;

public static class BenchVerb
{
    public const string Help = """
        trainer bench --model NAME [--batch N] [--steps N] [--input CxHxW] [--device cpu|cuda] [--precision fp32|bf16|fp16] [--threads N] [--nproc N] [--json]
          Training throughput (forward, backward, SGD step on synthetic data; images/s), inference
          throughput, median step time after 3 warm-up steps, peak memory (peak RSS on CPU), and
          the framework's share of a step (an upper bound: see docs/performance.md); --json also names
          the type the training step computed in and, for fp16, the loss scale at the end.
          Defaults: the model's native input, batch 128 (CIFAR models) or 16 (ImageNet models), 10 steps.
          --nproc N runs it on N ranks of this machine (Open MPI, as train --nproc): the batch is the
          global one, split evenly; it adds the gradient allreduce's time per step and its share
          (--threads then counts each rank's threads; default: the cores shared out).
        trainer bench --model NAME --onnx [--batch N] [--steps N] [--threads N] [--input CxHxW] [--json]
          Inference on the CPU, TorchSharp's evaluation against ONNX Runtime running the model
          'trainer export' writes, in one process on the same input and threads: images/s, median
          and 90th-percentile latency of a batch, each runtime's memory (peak RSS above the reading
          before it loaded the model), the ONNX file's size, and the throughput ratio.
          Defaults: batch 1, 20 steps after 3 warm-up runs, 2 threads. See docs/deploy.md.
        trainer bench --soak [--model NAME] [--steps N] [--batch N] [--every N] [--warmup N] [--workers N] [--device D] [--json]
          A long run of the real training loop (loader, engine, the default recipe) on the embedded
          CIFAR-10 sample, reading TorchSharp's live tensor count, then (after a full collection)
          the count again and the process's resident memory (RSS) every N steps; says whether,
          after warm-up, RSS never rises more than 2% over an earlier reading and the tensor count
          stays flat. Defaults: resnet20, 2000 steps, batch 32, every 100, warm-up a quarter of the steps.
        trainer bench --data DIR [--input CxHxW] [--workers N] [--batch N] [--epochs N] [--json]
          Images per second of the training input pipeline alone (read, decode, RandomResizedCrop,
          flip, normalise, batch) on an image folder (DIR/train/<class>/*.jpg) or cifar10-sample;
          one warm-up epoch, then N timed epochs (default 1). Defaults: 3x224x224, 2 workers, batch 256.
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("bench", args, ["data", "model", "input", "workers", "batch", "epochs", "steps", "device", "threads", "precision", "every", "warmup", "nproc"], ["json", "soak", "onnx"]);
        if (a.Has("onnx")) return Onnx(a, output);
        if (a.Value("nproc") is not null)
        {
            int ranks = a.IntValue("bench", "nproc", 1);
            if (a.Value("model") is null) throw new BadInputException("'trainer bench': --nproc goes with --model (the training step on several ranks)");
            if (Recipes.Distributed.World.LaunchedByMpi) throw new BadInputException("'trainer bench': --nproc starts its own ranks; under mpirun leave it out");
            if (ranks > 1) return MpiLauncher.Run("bench", WithoutNproc(args), ranks, null, output, Console.Error);
        }
        if (a.Has("soak")) return Soak(a, output);
        if (a.Value("model") is { } model) return Model(a, model, output);
        var dir = a.Value("data") ?? throw new BadInputException("'trainer bench': give --model NAME or --data DIR");
        int size = 224;
        if (a.Value("input") is { } input)
        {
            var chw = SummaryVerb.ParseInput(input);
            if (chw[0] != 3 || chw[1] != chw[2] || chw[1] < 8)
                throw new BadInputException($"'trainer bench': --input must be 3xSxS (square RGB, S >= 8), got '{input}'");
            size = (int)chw[1];
        }
        var data = dir == "cifar10-sample"
            ? new DataConfig { Name = "cifar10-sample", Workers = a.IntValue("bench", "workers", 2) }
            : new DataConfig { Name = DataConfig.ImageFolder, Root = dir, ImageSize = size, ResizeSize = size, Workers = a.IntValue("bench", "workers", 2) };
        var result = PipelineBenchmark.Run(data, a.IntValue("bench", "batch", 256), a.IntValue("bench", "epochs", 1));
        if (a.Has("json"))
            output.WriteLine(JsonSerializer.Serialize(new
            {
                data = result.Data, workers = result.Workers, images_per_s = Math.Round(result.ImagesPerSecond, 1),
                batch = result.Batch, input = new[] { 3, dir == "cifar10-sample" ? 32 : result.ImageSize, dir == "cifar10-sample" ? 32 : result.ImageSize },
                images = result.Images, seconds = Math.Round(result.Seconds, 3),
            }));
        else
            output.WriteLine($"{result.Data}: {result.ImagesPerSecond:F0} images/s ({result.Images:N0} images in {result.Seconds:F2} s, {result.Workers} workers, batch {result.Batch})");
        return 0;
    }

    static int Soak(Arguments a, TextWriter output)
    {
        var name = a.Value("model") ?? "resnet20";
        if (!ModelRegistry.Contains(name)) throw new BadInputException(ModelRegistry.UnknownMessage(name));
        int steps = a.IntValue("bench", "steps", 2000), every = a.IntValue("bench", "every", 100);
        int warmup = a.Value("warmup") is null ? Math.Max(every, steps / 4) : a.IntValue("bench", "warmup", 1);
        bool json = a.Has("json");
        var inv = CultureInfo.InvariantCulture;
        if (!json) output.WriteLine($"{"step",7} {"rss_mb",9} {"live_tensors",12} {"after_gc",8} {"managed_mb",10} {"loss",7} {"seconds",8}");
        var r = SoakBenchmark.Run(name, steps, a.IntValue("bench", "batch", 32), every, warmup, a.IntValue("bench", "workers", 2), a.Value("device") ?? "auto",
            json ? null : s => output.WriteLine(string.Create(inv, $"{s.Step,7} {s.RssBytes / 1048576.0,9:F1} {s.LiveTensors,12} {s.LiveTensorsCollected,8} {s.ManagedBytes / 1048576.0,10:F1} {s.Loss,7:F3} {s.Seconds,8:F1}")));
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                model = r.Model, device = r.Device, batch = r.Batch, steps = r.Steps, every = r.Every, warmup_steps = r.WarmupSteps, workers = r.Workers,
                images_per_s = Math.Round(r.ImagesPerSecond, 1),
                samples = r.Samples.Select(s => new { step = s.Step, rss_bytes = s.RssBytes, live_tensors = s.LiveTensors, live_tensors_after_gc = s.LiveTensorsCollected, managed_bytes = s.ManagedBytes, loss = Math.Round(s.Loss, 4), seconds = Math.Round(s.Seconds, 2) }),
                rss_min_bytes = r.RssMinBytes, rss_max_bytes = r.RssMaxBytes, rss_rise = Math.Round(r.RssRise, 5), rss_change = Math.Round(r.RssChange, 5), rss_within_2_percent = r.RssFlat,
                live_tensors_min = r.LiveTensorsMin, live_tensors_max = r.LiveTensorsMax, live_tensor_tolerance = r.LiveTensorTolerance, live_tensors_flat = r.LiveTensorsFlat,
            }));
            return 0;
        }
        output.WriteLine(string.Create(inv, $"after warm-up (step {r.WarmupSteps} on): RSS {r.RssMinBytes / 1048576.0:F1}-{r.RssMaxBytes / 1048576.0:F1} MB, first to last {r.RssChange:+0.00%;-0.00%}, " +
            $"largest rise over an earlier reading {r.RssRise:0.00%}: {(r.RssFlat ? "within" : "NOT within")} 2%; live tensors {r.LiveTensorsMin}-{r.LiveTensorsMax}: " +
            $"{(r.LiveTensorsFlat ? "flat" : "NOT flat")} (batches in flight allow {r.LiveTensorTolerance}); {r.ImagesPerSecond:F0} images/s"));
        return 0;
    }

    static int Onnx(Arguments a, TextWriter output)
    {
        var name = a.Value("model") ?? throw new BadInputException("'trainer bench --onnx' needs --model NAME");
        if (!ModelRegistry.Contains(name)) throw new BadInputException(ModelRegistry.UnknownMessage(name));
        if (a.Value("device") is { } device && device != "cpu") throw new BadInputException("'trainer bench --onnx' compares the runtimes on the CPU; leave out --device");
        var input = a.Value("input") is { } text ? SummaryVerb.ParseInput(text) : null;
        var r = OnnxBenchmark.Run(name, a.IntValue("bench", "batch", 1), a.IntValue("bench", "steps", 20), a.IntValue("bench", "threads", 2), input);
        object Figures(InferenceFigures f) => new
        {
            images_per_s = Math.Round(f.ImagesPerSecond, 2), latency_ms_median = Math.Round(f.LatencyMsMedian, 3), latency_ms_p90 = Math.Round(f.LatencyMsP90, 3), memory_bytes = f.MemoryBytes,
        };
        if (a.Has("json"))
            output.WriteLine(JsonSerializer.Serialize(new
            {
                model = r.Model, batch = r.Batch, input = r.Input, steps = r.Steps, threads = r.Threads, onnx_bytes = r.OnnxBytes,
                torchsharp = Figures(r.TorchSharp), onnxruntime = Figures(r.OnnxRuntime), onnxruntime_to_torchsharp = Math.Round(r.ThroughputRatio, 3),
            }));
        else
        {
            string Line(string runtime, InferenceFigures f) => string.Create(CultureInfo.InvariantCulture,
                $"  {runtime,-12} {f.ImagesPerSecond,8:F1} images/s  median {f.LatencyMsMedian,8:F2} ms  p90 {f.LatencyMsP90,8:F2} ms  memory {f.MemoryBytes / 1048576.0,6:F0} MB");
            output.WriteLine($"{r.Model}, batch {r.Batch}, {string.Join("x", r.Input)}, {r.Threads} threads, {r.Steps} runs; ONNX file {r.OnnxBytes / 1e6:F1} MB");
            output.WriteLine(Line("TorchSharp", r.TorchSharp));
            output.WriteLine(Line("ONNX Runtime", r.OnnxRuntime));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ONNX Runtime / TorchSharp throughput: {r.ThroughputRatio:F2}x"));
        }
        return 0;
    }

    static string[] WithoutNproc(string[] args)
    {
        var kept = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--nproc") { i++; continue; }
            if (args[i].StartsWith("--nproc=", StringComparison.Ordinal)) continue;
            kept.Add(args[i]);
        }
        return kept.ToArray();
    }

    static int Model(Arguments a, string name, TextWriter output)
    {
        if (!ModelRegistry.Contains(name)) throw new BadInputException(ModelRegistry.UnknownMessage(name));
        var entry = ModelRegistry.Get(name);
        var input = a.Value("input") is { } text ? SummaryVerb.ParseInput(text) : entry.NativeInput;
        var world = Recipes.Distributed.World.Current;
        if (a.Value("threads") is not null) TorchSharp.torch.set_num_threads(a.IntValue("bench", "threads", 1));
        else if (world.LocalSize > 1) TorchSharp.torch.set_num_threads(Math.Max(1, Environment.ProcessorCount / world.LocalSize));
        // Other ranks than 0 measure beside it and print nothing.
        if (world.Rank != 0) output = TextWriter.Null;
        var device = Devices.Select(a.Value("device") ?? "auto", world.LocalRank);
        var precision = (a.Value("precision") ?? "fp32") switch
        {
            "fp32" => Precision.Fp32, "bf16" => Precision.Bf16, "fp16" => Precision.Fp16,
            var other => throw new BadInputException($"'trainer bench': --precision must be fp32, bf16 or fp16, got '{other}'"),
        };
        var r = ModelBenchmark.Run(name, a.IntValue("bench", "batch", entry.Dataset == "cifar" ? 128 : 16), a.IntValue("bench", "steps", 10), input, device, precision,
            collective: world);
        Recipes.Distributed.World.Finish();
        double? allreduceShare = r.AllreduceMsPerStep / r.TrainStepMsMean;
        if (a.Has("json"))
            output.WriteLine(JsonSerializer.Serialize(new
            {
                model = r.Model, device = r.Device, precision = r.Precision, batch = r.Batch, input = r.Input, steps = r.Steps, threads = TorchSharp.torch.get_num_threads(),
                train_images_per_s = Math.Round(r.TrainImagesPerSecond, 2), infer_images_per_s = Math.Round(r.InferImagesPerSecond, 2),
                step_ms_median = Math.Round(r.StepMsMedian, 3), infer_ms_median = Math.Round(r.InferMsMedian, 3),
                peak_memory_bytes = r.PeakMemoryBytes, peak_memory_kind = r.PeakMemoryKind,
                overhead_ms = Math.Round(r.OverheadMs, 3), overhead_share = Math.Round(r.OverheadShare, 4),
                page_faults_per_step = r.PageFaultsPerStep is double f ? Math.Round(f, 1) : (double?)null,
                compute_dtype = r.ComputeDtype, loss_scale = r.LossScale,
                step_ms = r.StepMs.Select(ms => Math.Round(ms, 3)),
                ranks = r.Ranks, allreduce_ms_per_step = r.AllreduceMsPerStep is double ms ? Math.Round(ms, 3) : (double?)null,
                allreduce_share = allreduceShare is double share ? Math.Round(share, 4) : (double?)null,
            }));
        else
            output.WriteLine($"{r.Model} on {r.Device}, batch {r.Batch}, {string.Join("x", r.Input)}: train {r.TrainImagesPerSecond:F1} images/s " +
                $"(median step {r.StepMsMedian:F1} ms), inference {r.InferImagesPerSecond:F1} images/s, peak memory {r.PeakMemoryBytes / 1048576.0:F0} MB ({r.PeakMemoryKind}), " +
                $"framework share at most {r.OverheadShare:P1} ({r.OverheadMs:F2} ms a step)" +
                (r.Ranks > 1 ? $"; {r.Ranks} ranks x {TorchSharp.torch.get_num_threads()} threads, gradient allreduce {r.AllreduceMsPerStep:F2} ms a step ({allreduceShare:P1})" : ""));
        return 0;
    }
}
