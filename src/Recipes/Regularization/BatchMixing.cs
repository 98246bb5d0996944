using TorchSharp;
using Trainer.Recipes.Config;
using static TorchSharp.torch;

namespace Trainer.Recipes.Regularization;

/// <summary>
/// mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) on a whole batch, pairing each image
/// with the batch reversed (as timm does): mixup blends x and its partner with lambda ~ Beta(a, a);
/// CutMix pastes a box covering 1 - lambda of the partner's image and sets lambda to the area
/// actually kept. The random draws come from a generator seeded by (seed, step), so a resumed run
/// mixes exactly as an uninterrupted one.
/// </summary>
internal sealed class BatchMixing(RegularizationConfig c, long seed)
{
    public bool Enabled => (c.MixupAlpha > 0 || c.CutmixAlpha > 0) && c.MixProb > 0;

    /// <summary>The batch to train on and its targets; <paramref name="x"/> is changed in place when mixed.</summary>
    public (Tensor X, Targets Targets) Apply(Tensor x, Tensor y, long step)
    {
        var random = new Random(HashCode.Combine(seed, step));
        if (!Enabled || random.NextDouble() >= c.MixProb) return (x, new Targets(y));
        bool cutmix = c.CutmixAlpha > 0 && (c.MixupAlpha == 0 || random.NextDouble() < 0.5);
        double lambda = Beta(random, cutmix ? c.CutmixAlpha : c.MixupAlpha);
        using var scope = NewDisposeScope();
        var partner = x.flip(0);
        var partnerLabels = y.flip(0).MoveToOuterDisposeScope();
        using (no_grad())
        {
            if (cutmix)
            {
                var (top, bottom, left, right) = Box(random, x.shape[2], x.shape[3], lambda);
                x[.., .., TensorIndex.Slice(top, bottom), TensorIndex.Slice(left, right)] = partner[.., .., TensorIndex.Slice(top, bottom), TensorIndex.Slice(left, right)].clone();
                lambda = 1 - (double)(bottom - top) * (right - left) / (x.shape[2] * x.shape[3]);
            }
            else
            {
                using Scalar own = lambda, other = 1 - lambda;
                var blended = x * own + partner * other;
                x.copy_(blended);
            }
        }
        return (x, new Targets(y, partnerLabels, lambda));
    }

    /// <summary>
    /// CutMix's box: sides sqrt(1 - lambda) of the image's, centred uniformly at random and
    /// clipped at the borders.
    /// </summary>
    public static (long Top, long Bottom, long Left, long Right) Box(Random random, long height, long width, double lambda)
    {
        double ratio = Math.Sqrt(1 - lambda);
        long h = (long)(height * ratio), w = (long)(width * ratio);
        long cy = random.NextInt64(height), cx = random.NextInt64(width);
        return (Math.Clamp(cy - h / 2, 0, height), Math.Clamp(cy + h / 2, 0, height), Math.Clamp(cx - w / 2, 0, width), Math.Clamp(cx + w / 2, 0, width));
    }

    /// <summary>A Beta(a, a) draw as G1 / (G1 + G2) of two Gamma(a) draws.</summary>
    public static double Beta(Random random, double a)
    {
        double g1 = Gamma(random, a), g2 = Gamma(random, a);
        return g1 / (g1 + g2);
    }

    /// <summary>Gamma(shape, 1) by Marsaglia and Tsang (2000); shapes below 1 through Gamma(a + 1) U^(1/a).</summary>
    static double Gamma(Random random, double shape)
    {
        if (shape < 1) return Gamma(random, shape + 1) * Math.Pow(random.NextDouble(), 1 / shape);
        double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double z, v;
            do
            {
                z = Normal(random);
                v = 1 + c * z;
            } while (v <= 0);
            v = v * v * v;
            double u = random.NextDouble();
            if (u < 1 - 0.0331 * z * z * z * z || Math.Log(u) < 0.5 * z * z + d * (1 - v + Math.Log(v))) return d * v;
        }
    }

    static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
