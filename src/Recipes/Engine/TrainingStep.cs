using Trainer.Models;
using Trainer.Recipes.Optim;
using Trainer.Recipes.Regularization;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>One optimisation step, shared by the engine and the benchmark so both time the same work.</summary>
internal static class TrainingStep
{
    /// <summary>
    /// Forward, the criterion (plus <paramref name="auxWeight"/> x each auxiliary classifier's loss),
    /// zero the gradients, backward, optimizer step; in bf16/fp16 through <paramref name="mixed"/>.
    /// <paramref name="gradientsReady"/> runs between backward and the update (data-parallel
    /// training averages the gradients over the ranks there).
    /// The returned tensors live in the caller's dispose scope.
    /// </summary>
    public static (Tensor Logits, Tensor Loss) Run(nn.Module<Tensor, Tensor> model, Optimizer optimizer, Tensor x, Targets targets, Criterion criterion, double auxWeight,
        MixedPrecision? mixed = null, Action? gradientsReady = null)
    {
        if (mixed is not null) return mixed.Step(optimizer, x, targets, criterion, auxWeight, gradientsReady);
        var logits = model.forward(x);
        var loss = criterion.Loss(logits, targets);
        if (model is ClassifierModel classifier)
            foreach (var aux in classifier.AuxiliaryLogits)
                loss = loss + auxWeight * criterion.Loss(aux, targets);
        optimizer.ZeroGrad();
        loss.backward();
        gradientsReady?.Invoke();
        optimizer.Step();
        return (logits, loss);
    }

    /// <summary>A plain cross-entropy step on labels <paramref name="y"/>.</summary>
    public static (Tensor Logits, Tensor Loss) Run(nn.Module<Tensor, Tensor> model, Optimizer optimizer, Tensor x, Tensor y, double auxWeight, MixedPrecision? mixed = null) =>
        Run(model, optimizer, x, new Targets(y), Criterion.Plain, auxWeight, mixed);
}
