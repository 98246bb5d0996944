using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Optim;

/// <summary>
/// Named parameters that share a weight decay and a learning-rate multiplier (1 for most; a
/// backbone trained more gently than its new head gets less).
/// </summary>
internal sealed record ParameterGroup(IReadOnlyList<(string Name, Parameter Parameter)> Parameters, double WeightDecay, double LrScale = 1)
{
    /// <summary>
    /// A model's trainable parameters as one decayed group, or, when <paramref name="exemptBnAndBias"/>,
    /// a decayed group and an undecayed group of the one-dimensional ones (BatchNorm scales and shifts, biases).
    /// </summary>
    public static IReadOnlyList<ParameterGroup> Split(nn.Module model, double weightDecay, bool exemptBnAndBias)
    {
        var all = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        if (!exemptBnAndBias) return [new ParameterGroup(all, weightDecay)];
        return
        [
            new ParameterGroup(all.Where(p => p.parameter.dim() > 1).ToList(), weightDecay),
            new ParameterGroup(all.Where(p => p.parameter.dim() <= 1).ToList(), 0),
        ];
    }
}
