using TorchSharp;
using static TorchSharp.torch;

namespace Trainer.Recipes.Regularization;

/// <summary>
/// What a batch is trained towards: labels <c>A</c>, or after mixup/CutMix the blend
/// lambda * A + (1 - lambda) * B of two label sets.
/// </summary>
internal sealed record Targets(Tensor A, Tensor? B = null, double Lambda = 1)
{
    /// <summary>The labels that weigh more: what training accuracy is counted against.</summary>
    public Tensor Dominant => B is null || Lambda >= 0.5 ? A : B;
}

/// <summary>
/// Cross-entropy, optionally with label smoothing (Szegedy et al. 2016: targets (1 - e) one-hot
/// + e / K uniform), over plain or mixed targets: lambda CE(A) + (1 - lambda) CE(B), which is the
/// cross-entropy against the blended label distribution.
/// </summary>
internal sealed class Criterion(double labelSmoothing = 0)
{
    public static readonly Criterion Plain = new();

    public double LabelSmoothing => labelSmoothing;

    public Tensor Loss(Tensor logits, Targets targets)
    {
        var a = nn.functional.cross_entropy(logits, targets.A, label_smoothing: labelSmoothing);
        if (targets.B is null || targets.Lambda == 1) return a;
        var b = nn.functional.cross_entropy(logits, targets.B, label_smoothing: labelSmoothing);
        using Scalar own = targets.Lambda, other = 1 - targets.Lambda;
        return a * own + b * other;
    }
}
