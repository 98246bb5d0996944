using Trainer.Models;
using Trainer.Recipes.Optim;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>One optimisation step, shared by the engine and the benchmark so both time the same work.</summary>
public static class TrainingStep
{
    /// <summary>
    /// Forward, cross-entropy (plus <paramref name="auxWeight"/> x each auxiliary classifier's loss),
    /// zero the gradients, backward, optimizer step; in bf16/fp16 through <paramref name="mixed"/>.
    /// The returned tensors live in the caller's dispose scope.
    /// </summary>
    public static (Tensor Logits, Tensor Loss) Run(nn.Module<Tensor, Tensor> model, Sgd optimizer, Tensor x, Tensor y, double auxWeight, MixedPrecision? mixed = null)
    {
        if (mixed is not null) return mixed.Step(optimizer, x, y, auxWeight);
        var logits = model.forward(x);
        var loss = nn.functional.cross_entropy(logits, y);
        if (model is ClassifierModel classifier)
            foreach (var aux in classifier.AuxiliaryLogits)
                loss = loss + auxWeight * nn.functional.cross_entropy(aux, y);
        optimizer.ZeroGrad();
        loss.backward();
        optimizer.Step();
        return (logits, loss);
    }
}
