using System.Diagnostics;
using Xunit;

namespace Trainer.Tests;

/// <summary>Bad input: one line on stderr naming the problem and the file, exit code 2, nothing overwritten.</summary>
public class CliTests
{
    static void AssertBadInput(Cli.Result result, params string[] expected)
    {
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("trainer: error: ", line);
        Assert.DoesNotContain(" at ", line.Replace("at line", ""));
        foreach (var part in expected) Assert.Contains(part, line);
    }

    [Fact]
    public void A_missing_config_file_is_named() =>
        AssertBadInput(Cli.Run("train", "--config", "/nowhere/resnet.yaml"), "/nowhere/resnet.yaml");

    [Fact]
    public void An_unknown_key_and_a_wrong_type_are_named()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["c.yaml"], "model: resnet20\ndata:\n  name: cifar10-sample\ntrain:\n  epochz: 3\n");
        AssertBadInput(Cli.Run("train", "--config", dir["c.yaml"], "--out", dir["run"]), "unknown key 'train.epochz'", "c.yaml");
        AssertBadInput(Cli.Run("train", "--set", "train.batch_size=big", "--out", dir["run"]), "train.batch_size", "expects an integer");
        Assert.False(Directory.Exists(dir["run"]));
    }

    [Fact]
    public void Unknown_verbs_and_options_are_bad_input()
    {
        AssertBadInput(Cli.Run("fly"), "unknown verb 'fly'");
        AssertBadInput(Cli.Run("train", "--epochs", "3"), "unknown option --epochs");
        AssertBadInput(Cli.Run("eval"), "--checkpoint");
        AssertBadInput(Cli.Run("data", "download", "mnist"), "mnist");
    }

    [Fact]
    public void A_truncated_cifar_file_is_named_with_its_size()
    {
        using var dir = new TempDir();
        var folder = Directory.CreateDirectory(dir["cifar/cifar-10-batches-bin"]).FullName;
        File.WriteAllBytes(Path.Combine(folder, "data_batch_1.bin"), new byte[3073 * 3 - 1]);
        File.WriteAllBytes(Path.Combine(folder, "test_batch.bin"), new byte[3073]);
        AssertBadInput(Cli.Run("train", "--set", "data.name=cifar10", "--set", $"data.root={dir["cifar"]}", "--out", dir["run"]),
            "data_batch_1.bin", "9218 bytes");
    }

    [Fact]
    public void Training_into_an_existing_run_without_resume_overwrites_nothing()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["run/checkpoints"]);
        File.WriteAllText(dir["run/metrics.csv"], "precious");
        File.WriteAllText(dir["run/checkpoints/last.ckpt"], "precious too");
        AssertBadInput(Cli.Run("train", "--out", dir["run"]), "already holds a run", "--resume");
        Assert.Equal("precious", File.ReadAllText(dir["run/metrics.csv"]));
        Assert.Equal("precious too", File.ReadAllText(dir["run/checkpoints/last.ckpt"]));
        Assert.False(File.Exists(dir["run/config.yaml"]));
    }

    [Fact]
    public void Resume_needs_a_run_with_a_checkpoint()
    {
        using var dir = new TempDir();
        AssertBadInput(Cli.Run("train", "--resume"), "--resume needs --out");
        AssertBadInput(Cli.Run("train", "--resume", "--out", dir["empty"]), "last.ckpt", "does not exist");
    }

    [Fact]
    public void A_corrupt_checkpoint_is_named()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["bad.ckpt"], "not a zip");
        AssertBadInput(Cli.Run("eval", "--checkpoint", dir["bad.ckpt"]), "bad.ckpt", "not a readable trainer checkpoint");
        AssertBadInput(Cli.Run("eval", "--checkpoint", dir["none.ckpt"]), "none.ckpt", "does not exist");
    }

    [Fact]
    public void Asking_for_cuda_gives_the_gpu_or_one_line_saying_why_there_is_none()
    {
        // The build wrote which libtorch this folder holds; a GPU is only ever seen by a CUDA build.
        var backend = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "torch-backend.txt")).Trim();
        Assert.Equal(backend, Trainer.Models.Native.NativeRuntime.TorchBackend);
        Assert.Contains(backend, new[] { "cpu", "cuda" });
        using var dir = new TempDir();
        AssertBadInput(Cli.Run("bench", "--model", "resnet20", "--device", "gpu"), "device must be auto, cpu, cuda or cuda:N, got 'gpu'");
        if (TorchSharp.torch.cuda.is_available())
        {
            Assert.Equal("cuda", backend);
            Assert.Equal(TorchSharp.DeviceType.CUDA, Trainer.Recipes.Runs.Devices.Select("cuda").type);
            Assert.Equal(TorchSharp.DeviceType.CUDA, Trainer.Recipes.Runs.Devices.Select("auto").type);
            AssertBadInput(Cli.Run("train", "--device", "cuda:64", "--out", dir["run"]), "device 'cuda:64' was asked for, but libtorch sees");
            return;
        }
        Assert.Equal(TorchSharp.DeviceType.CPU, Trainer.Recipes.Runs.Devices.Select("auto").type);
        // A CPU build names itself as the reason; a CUDA build asks the driver (CudaDriverTests).
        string why = backend == "cpu" ? "built with the CPU libtorch" : Trainer.Models.Native.CudaDriver.WhyNoDevice() ?? "sees no CUDA device";
        AssertBadInput(Cli.Run("train", "--device", "cuda", "--out", dir["run"]), "device 'cuda' was asked for", why);
        AssertBadInput(Cli.Run("train", "--device", "cuda:1", "--out", dir["run"]), "device 'cuda:1' was asked for", why);
        Assert.False(Directory.Exists(dir["run"]));
    }

    [Fact]
    public void The_cuda_driver_is_asked_why_there_is_no_gpu()
    {
        Assert.Equal("12.8", Trainer.Models.Native.CudaDriver.Version(12080));
        Assert.Equal("11.4", Trainer.Models.Native.CudaDriver.Version(11040));
        bool driverInstalled = System.Runtime.InteropServices.NativeLibrary.TryLoad("libcuda.so.1", out var handle);
        if (driverInstalled) System.Runtime.InteropServices.NativeLibrary.Free(handle);
        var why = Trainer.Models.Native.CudaDriver.WhyNoDevice();
        if (!driverInstalled) Assert.Equal("no NVIDIA driver is installed (libcuda.so.1 not found)", why);
        else Assert.True(why is null || why.Contains("NVIDIA driver"), why);
    }

    [Fact]
    public void Models_lists_every_cifar_resnet_and_plain_net_with_parameters()
    {
        var result = Cli.Run("models", "--json");
        Assert.Equal(0, result.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(result.Output);
        var names = doc.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()).ToList();
        foreach (var n in new[] { "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202", "plain20", "plain110" })
            Assert.Contains(n, names);
        var resnet56 = doc.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == "resnet56");
        Assert.Equal(853_018, resnet56.GetProperty("params").GetInt64());
        Assert.Equal("cifar", resnet56.GetProperty("dataset").GetString());
    }

    [Fact]
    public void The_real_binary_prints_one_line_and_exits_2_without_a_stack_trace()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "trainer.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing");
        var psi = new ProcessStartInfo("dotnet", [dll, "train", "--set", "optimizer.momentun=0.9"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var error = process.StandardError.ReadToEnd();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.Equal(2, process.ExitCode);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("unknown key 'optimizer.momentun'", line);
    }

    [Fact]
    public void Summary_prints_the_spec_json_and_names_unknown_models()
    {
        var result = Cli.Run("summary", "--model", "resnet20", "--json");
        Assert.True(result.ExitCode == 0, result.Error);
        using var doc = System.Text.Json.JsonDocument.Parse(result.Output);
        var root = doc.RootElement;
        Assert.Equal("resnet20", root.GetProperty("model").GetString());
        Assert.Equal([3, 32, 32], root.GetProperty("input").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(269_722, root.GetProperty("params").GetInt64());
        Assert.Equal(269_722, root.GetProperty("trainable_params").GetInt64());
        Assert.InRange(root.GetProperty("macs").GetInt64(), 40_000_000, 41_000_000);
        var first = root.GetProperty("layers")[0];
        Assert.Equal("conv1", first.GetProperty("name").GetString());
        Assert.Equal([16, 32, 32], first.GetProperty("output_shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(16 * 32 * 32 * 3 * 9, first.GetProperty("macs").GetInt64());
        Assert.Equal(16 * 32 * 32 * 4, first.GetProperty("output_bytes").GetInt64());
        Assert.True(root.GetProperty("activation_bytes").GetInt64() > 0);

        AssertBadInput(Cli.Run("summary", "--model", "resnet21"), "unknown model 'resnet21'", "closest: resnet20");
        AssertBadInput(Cli.Run("train", "--set", "model=mobilenetv2"), "unknown model 'mobilenetv2'", "mobilenet_v2");
        AssertBadInput(Cli.Run("summary", "--model", "resnet20", "--input", "3x32"), "CxHxW");
    }
}
