using Trainer.Data.Cifar;
using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Optim;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

public class MixedPrecisionTests
{
    /// <summary>
    /// Losses of <paramref name="steps"/> SGD steps of ResNet-20 on one fixed batch of 16 real CIFAR
    /// images (halved to 16x16: low-precision convolutions are emulated, so slow, on most CPUs), from one fixed initialisation.
    /// </summary>
    static (List<float> Losses, ClassifierModel Model, MixedPrecision? Mixed) Train(Precision precision, int steps, double lossScale = 65536)
    {
        var data = CifarSample.LoadTrain();
        using var pixels = tensor(data.Pixels.AsSpan(0, 16 * 3072).ToArray(), [16, 3, 32, 32]);
        var x = nn.functional.avg_pool2d(pixels.to_type(ScalarType.Float32).div_(255).sub_(0.47).div_(0.25), 2);
        var y = tensor(data.Labels.Take(16).Select(l => (long)l).ToArray());
        manual_seed(11);
        var model = ModelRegistry.Create("resnet20");
        MixedPrecision? mixed = precision == Precision.Fp32 ? null : new MixedPrecision(model, ModelRegistry.Create("resnet20"), precision, lossScale);
        var optimizer = new Sgd(ParameterGroup.Split(model, 1e-4, false), lr: 0.05, momentum: 0.9, dampening: 0, nesterov: false);
        model.train();
        var losses = new List<float>();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            var (_, loss) = TrainingStep.Run(model, optimizer, x, y, 0.3, mixed);
            losses.Add(loss.item<float>());
        }
        return (losses, model, mixed);
    }

    [Fact]
    public void Bf16_training_lowers_the_loss_as_fp32_does_and_keeps_fp32_master_weights_and_batchnorm()
    {
        var (fp32, _, _) = Train(Precision.Fp32, 10);
        var (bf16, model, mixed) = Train(Precision.Bf16, 10);
        using var _ = mixed;
        Assert.InRange(Math.Abs(bf16[0] - fp32[0]) / fp32[0], 0, 0.02);        // the same start, rounded
        Assert.True(bf16[^1] < 0.6 * bf16[0], $"bf16 loss went {bf16[0]:F3} -> {bf16[^1]:F3}");
        Assert.True(fp32[^1] < 0.6 * fp32[0], $"fp32 loss went {fp32[0]:F3} -> {fp32[^1]:F3}");
        Assert.InRange(bf16[^1] / fp32[^1], 0.5, 2.0);                          // falls as fp32 does
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        var bn = model.named_buffers().First(b => b.name.EndsWith("running_var"));
        Assert.Equal(ScalarType.Float32, bn.buffer.dtype);
        Assert.False(bn.buffer.allclose(ones_like(bn.buffer)), "BatchNorm statistics did not come back from the low-precision twin");
        Assert.Equal(1, mixed!.LossScale);
    }

    [Fact]
    public void Fp16_skips_overflowing_steps_lowers_the_scale_and_still_learns()
    {
        // A start scale of 2^30 overflows float16 gradients: those steps are skipped and the scale halves until they fit.
        var (losses, _, mixed) = Train(Precision.Fp16, 16, lossScale: Math.Pow(2, 30));
        using var _ = mixed;
        Assert.True(mixed!.SkippedSteps > 0, "no step overflowed at scale 2^30");
        Assert.True(mixed.LossScale < Math.Pow(2, 30));
        Assert.True(losses[^1] < 0.8 * losses[0], $"fp16 loss went {losses[0]:F3} -> {losses[^1]:F3}");
    }
}
