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
    public void Depthwise_inference_at_batch_16_runs_without_a_flood_of_nnpack_warnings()
    {
        // Through the real trainer: MobileNetV2's depthwise convolutions at batch 16 in evaluation are
        // where libtorch asks for NNPACK (which cannot initialise where the caches are hidden).
        using var process = new TrainerProcess("bench", "--model", "mobilenet_v2", "--batch", "16", "--input", "3x64x64", "--steps", "1", "--threads", "2", "--json");
        var (code, output, error) = process.Wait();
        Assert.True(code == 0, error);
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
