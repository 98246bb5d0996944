using System.Text.Json;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Engine;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>
/// The device each test runs on, and the tests that need a GPU. The default suite runs on the
/// CPU everywhere (TestSetup hides the GPUs); the [CudaFact] tests run with TRAINER_TEST_CUDA=1 on
/// a CUDA build (scripts/gpu-check.sh runs exactly those) and are left out of scripts/test.sh.
/// </summary>
public class CudaTests
{
    [Fact]
    public void The_default_suite_runs_on_the_cpu_whatever_the_machine()
    {
        if (TestSetup.CudaRun) return;   // the CUDA run is the one that may see GPUs
        Assert.Equal("-1", Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES"));
        Assert.False(cuda.is_available());
        Assert.Equal(TorchSharp.DeviceType.CPU, Trainer.Recipes.Runs.Devices.Select("auto").type);
    }

    [Fact]
    public void Each_steps_cuda_seed_depends_on_the_runs_seed_and_the_step_only()
    {
        // A resumed run seeds step k as the uninterrupted run did; neighbouring steps and seeds differ.
        Assert.Equal(Determinism.StepSeed(5, 1000), Determinism.StepSeed(5, 1000));
        var seeds = new[] { Determinism.StepSeed(5, 1000), Determinism.StepSeed(5, 1001), Determinism.StepSeed(6, 1000), Determinism.StepSeed(0, 0) };
        Assert.Equal(4, seeds.Distinct().Count());
        Assert.All(seeds, s => Assert.True(s >= 0));
    }

    [Fact]
    public void Deterministic_mode_reaches_libtorchs_switch_and_is_undone_by_the_next_run()
    {
        try
        {
            Assert.False(Determinism.On);   // libtorch's default
            Determinism.Apply(true);
            Assert.True(Determinism.On);    // read back from libtorch's global context
        }
        finally
        {
            Determinism.Apply(false);
        }
        Assert.False(Determinism.On);
    }

    [CudaFact]
    [Trait("Device", "cuda")]
    public void A_run_on_cuda_trains_on_the_gpu_and_says_so()
    {
        using var dir = new TempDir();
        var result = Cli.Run("train", "--device", "cuda", "--out", dir["run"], "--set", "data.subset=256", "--set", "train.epochs=1", "--set", "log.progress=false");
        Assert.True(result.ExitCode == 0, result.Error);
        using var summary = JsonDocument.Parse(File.ReadAllText(dir["run/summary.json"]));
        Assert.StartsWith("cuda", summary.RootElement.GetProperty("device").GetString());
        Assert.True(double.IsFinite(summary.RootElement.GetProperty("final").GetProperty("train_loss").GetDouble()));
    }

    [CudaFact]
    [Trait("Device", "cuda")]
    public void Deterministic_cuda_runs_with_dropout_repeat_exactly_and_the_seed_changes_them()
    {
        // VGG-11 (CIFAR form) has dropout: its masks come from the CUDA generator, seeded per step.
        string Final(string folder, long seed)
        {
            var result = Cli.Run("train", "--device", "cuda", "--model", "vgg11_cifar", "--out", folder, "--set", "deterministic=true", "--set", $"seed={seed}",
                "--set", "data.subset=128", "--set", "train.batch_size=32", "--set", "train.iterations=8", "--set", "log.progress=false");
            Assert.True(result.ExitCode == 0, result.Error);
            using var checkpoint = Checkpoint.Load(Path.Combine(folder, "checkpoints", "last.ckpt"));
            return string.Join(",", checkpoint.Model.OrderBy(t => t.Key).Select(t => t.Value.sum().item<float>().ToString("R")));
        }
        using var dir = new TempDir();
        Assert.Equal(Final(dir["a"], 1), Final(dir["b"], 1));
        Assert.NotEqual(Final(dir["a2"], 1), Final(dir["c"], 2));
    }

    [CudaFact]
    [Trait("Device", "cuda")]
    public void Bench_on_cuda_reports_the_peak_the_allocator_reserved()
    {
        var run = Cli.Run("bench", "--model", "resnet20", "--batch", "64", "--steps", "3", "--device", "cuda", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        using var doc = JsonDocument.Parse(run.Output);
        Assert.Equal("cuda_peak_reserved", doc.RootElement.GetProperty("peak_memory_kind").GetString());
        // ResNet-20's weights, gradients, momentum and batch-64 activations: tens of MB, under the card's memory.
        Assert.InRange(doc.RootElement.GetProperty("peak_memory_bytes").GetInt64(), 10L << 20, 200L << 30);
    }
}
