using Trainer.Recipes.Config;
using static TorchSharp.torch;

namespace Trainer.Recipes.Optim;

/// <summary>optimizer.* of a config -> the optimizer over a model's trainable parameters.</summary>
internal static class OptimizerFactory
{
    public static readonly string[] Names = ["sgd", "rmsprop", "adam", "adamw"];

    public static Optimizer Create(OptimizerConfig c, nn.Module model, double lr) =>
        Create(c, ParameterGroup.Split(model, c.WeightDecay, c.NoDecayBnBias), lr);

    public static Optimizer Create(OptimizerConfig c, IReadOnlyList<ParameterGroup> groups, double lr) => c.Name switch
    {
        "sgd" => new Sgd(groups, lr, c.Momentum, c.Dampening, c.Nesterov) { MaxGradNorm = c.ClipGradNorm },
        "rmsprop" => new RmsProp(groups, lr, c.Alpha, c.Eps, c.Momentum, c.TfStyle) { MaxGradNorm = c.ClipGradNorm },
        "adam" => new Adam(groups, lr, c.Betas[0], c.Betas[1], c.Eps, decoupled: false) { MaxGradNorm = c.ClipGradNorm },
        "adamw" => new Adam(groups, lr, c.Betas[0], c.Betas[1], c.Eps, decoupled: true) { MaxGradNorm = c.ClipGradNorm },
        _ => throw new ArgumentException($"unknown optimizer '{c.Name}'"),
    };
}
