using Trainer.Recipes.Distributed;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>
/// SyncBatchNorm on a job of one rank must be BatchNorm itself: the same outputs, gradients and
/// running statistics as the layers it hooks (the 2-rank test then checks the sums across ranks).
/// </summary>
public class SyncBatchNormTests
{
    [Fact]
    public void On_one_rank_it_computes_what_batchnorm_computes_forward_backward_and_running_statistics()
    {
        var plain = Run(synchronised: false);
        var synced = Run(synchronised: true);
        foreach (var (name, expected) in plain)
        {
            double difference = (expected - synced[name]).abs().max().to(ScalarType.Float64).item<double>();
            double scale = Math.Max(expected.abs().max().to(ScalarType.Float64).item<double>(), 1e-3);
            Assert.True(difference <= 1e-5 * scale, $"{name}: {difference:G3} apart (scale {scale:G3})");
        }
    }

    /// <summary>Two training steps' worth of ResNet-20 forward and backward: output, every gradient and every buffer.</summary>
    static Dictionary<string, Tensor> Run(bool synchronised)
    {
        manual_seed(3);
        var model = Trainer.Models.ModelRegistry.Create("resnet20");
        model.train();
        using var sync = synchronised ? SyncBatchNorm.Attach(SingleProcess.Instance, model) : null;
        var results = new Dictionary<string, Tensor>();
        var generator = new Generator(7);
        for (int step = 0; step < 2; step++)
        {
            var x = randn(new long[] { 8, 3, 32, 32 }, generator: generator);
            var output = model.call(x);
            output.square().mean().backward();
            results[$"output{step}"] = output.detach().clone();
        }
        foreach (var (name, p) in model.named_parameters()) results[$"grad {name}"] = p.grad!.clone();
        foreach (var (name, b) in model.named_buffers()) results[$"buffer {name}"] = b.to(ScalarType.Float64).clone();
        return results;
    }
}
