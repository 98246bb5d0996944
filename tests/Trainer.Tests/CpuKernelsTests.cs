using Trainer.Models.Native;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>
/// The oneDNN guard (CpuKernels, OneDnnCacheRepair): on a machine that hides its CPU caches the
/// right remedy is in force, and whatever is in force, oneDNN's convolutions compute what
/// libtorch's own kernels compute, forward and backward, in the shapes the model zoo uses.
/// </summary>
public class CpuKernelsTests
{
    [Fact]
    public void The_remedy_in_force_fits_this_machine()
    {
        if (!CpuKernels.CacheInfoHidden)
        {
            Assert.Null(CpuKernels.RepairedCaches);
            Assert.Null(CpuKernels.IsaCap);
            Assert.Null(CpuKernels.OneDnnOffBecause);
        }
        else if (OneDnnCacheRepair.IsAmd())
        {
            // The pinned libtorch's CPU description must be found and repaired: the slow fallback would pass every other test.
            Assert.True(CpuKernels.RepairedCaches is not null, $"not repaired: {CpuKernels.OneDnnOffBecause}");
            Assert.Null(CpuKernels.OneDnnOffBecause);
            Assert.True(CpuKernels.OneDnnEnabled);
            var sizes = OneDnnCacheRepair.LegacyAmdCacheSizes()!.Value;
            Assert.Contains($"L2 {sizes.L2 / 1024} KiB", CpuKernels.RepairedCaches);
        }
        else Assert.Equal("AVX", CpuKernels.IsaCap);
    }

    [Fact]
    public async Task Depthwise_inference_at_batch_16_runs_without_a_flood_of_nnpack_warnings()
    {
        // Through the real trainer: MobileNetV2's depthwise convolutions at batch 16 in evaluation are
        // where libtorch asks for NNPACK (which cannot initialise where the caches are hidden).
        var dll = Path.Combine(AppContext.BaseDirectory, "trainer.dll");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet",
            [dll, "bench", "--model", "mobilenet_v2", "--batch", "16", "--input", "3x64x64", "--steps", "1", "--threads", "2", "--json"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = System.Diagnostics.Process.Start(psi)!;
        var errorRead = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var error = await errorRead;
        Assert.True(process.ExitCode == 0, error);
        Assert.Contains("infer_images_per_s", output);
        Assert.DoesNotContain("NNPACK", error);
        Assert.Equal(!CpuKernels.CacheInfoHidden, CpuKernels.NnpackEnabled);
    }

    // in, out, kernel, stride, groups, side: ResNet-50's 1x1 of layer 3 (SIGFPE with the misread caches), 1x1 stride 2
    // (downsample), 3x3, 3x3 stride 2, 7x7 stride 2 stem, depthwise, grouped (ResNeXt), and a DenseNet-sized one.
    [Theory]
    [InlineData(1024, 256, 1, 1, 1, 14)]
    [InlineData(256, 512, 1, 2, 1, 28)]
    [InlineData(64, 64, 3, 1, 1, 28)]
    [InlineData(128, 256, 3, 2, 1, 28)]
    [InlineData(3, 64, 7, 2, 1, 56)]
    [InlineData(96, 96, 3, 1, 96, 28)]
    [InlineData(128, 128, 3, 1, 32, 14)]
    [InlineData(40, 12, 3, 1, 1, 32)]
    public void OneDnn_convolutions_match_libtorchs_own_kernels_forward_and_backward(int cin, int cout, int kernel, int stride, int groups, int side)
    {
        var (outOn, inGradOn, weightGradOn) = Convolve(true, cin, cout, kernel, stride, groups, side);
        var (outOff, inGradOff, weightGradOff) = Convolve(false, cin, cout, kernel, stride, groups, side);
        AssertClose(outOff, outOn, "output");
        AssertClose(inGradOff, inGradOn, "input gradient");
        AssertClose(weightGradOff, weightGradOn, "weight gradient");
    }

    static (float[] Output, float[] InputGrad, float[] WeightGrad) Convolve(bool oneDnn, int cin, int cout, int kernel, int stride, int groups, int side)
    {
        bool before = CpuKernels.OneDnnEnabled;
        CpuKernels.OneDnnEnabled = oneDnn;
        try
        {
            using var generator = new Generator(seed: 7);
            using var x = ChannelsLast(randn([8, cin, side, side], generator: generator)).requires_grad_();
            using var w = randn([cout, cin / groups, kernel, kernel], generator: generator).div_(Math.Sqrt(cin / groups * kernel * kernel)).requires_grad_();
            using var upstream = randn([8, cout, (side + 2 * (kernel / 2) - kernel) / stride + 1, (side + 2 * (kernel / 2) - kernel) / stride + 1], generator: generator);
            using var y = nn.functional.conv2d(x, w, strides: [stride, stride], padding: [kernel / 2, kernel / 2], groups: groups);
            using var loss = (y * upstream).sum();
            loss.backward();
            return (y.contiguous().data<float>().ToArray(), x.grad!.contiguous().data<float>().ToArray(), w.grad!.contiguous().data<float>().ToArray());
        }
        finally { CpuKernels.OneDnnEnabled = before; }
    }

    /// <summary>(N, C, H, W) with channels last in memory, as training feeds the models.</summary>
    static Tensor ChannelsLast(Tensor nchw) => nchw.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(v => Math.Abs((double)v)), worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.True(worst <= 1e-4 * scale, $"{what}: largest difference {worst:G3} against a largest value of {scale:G3}");
    }
}

/// <summary>
/// The memory settings (NativeHeap, TensorBlockCache), through the real trainer process (libtorch's
/// large blocks are reused on the main thread, where the trainer trains; a test thread's
/// allocations take other paths in glibc): ResNet-18 at batch 12 and 224x224 has 38.5 MB
/// activations, above glibc's largest mmap threshold, so with glibc's defaults each step maps and
/// faults them in again; with the heap kept they are reused from the heap; with the tensor cache
/// each block keeps its own mapping and the next step gets it back.
/// </summary>
public class NativeHeapTests
{
    static double FaultsPerStep(bool heapKept, bool tensorCache)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "trainer.dll");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet",
            [dll, "bench", "--model", "resnet18", "--batch", "12", "--input", "3x224x224", "--steps", "2", "--threads", "2", "--json"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment[NativeHeap.OptOutVariable] = heapKept ? "1" : "0";
        psi.Environment[TensorBlockCache.OptOutVariable] = tensorCache ? "1" : "0";
        using var process = System.Diagnostics.Process.Start(psi)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, error.Result);
        using var json = System.Text.Json.JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        return json.RootElement.GetProperty("page_faults_per_step").GetDouble();
    }

    [Fact]
    public void Training_steps_reuse_their_memory_instead_of_faulting_their_activations_in_again()
    {
        double glibcDefaults = FaultsPerStep(heapKept: false, tensorCache: false);
        double heapOnly = FaultsPerStep(heapKept: true, tensorCache: false);
        double cacheOnly = FaultsPerStep(heapKept: false, tensorCache: true);
        string figures = $"page faults a step: {glibcDefaults:F0} with glibc's defaults, {heapOnly:F0} with the heap kept, {cacheOnly:F0} with the tensor cache alone";
        // Measured: about 51,800, 20-5,800 and 770 (the cache leaves smaller blocks to glibc's defaults).
        Assert.True(heapOnly * 3 < glibcDefaults, figures);
        Assert.True(cacheOnly * 3 < glibcDefaults, figures);
    }
}
