using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Sinks;
using Trainer.Data;
using static TorchSharp.torch;

namespace Trainer.Recipes.Runs;

/// <summary>
/// What a run takes from its caller instead of its config (the public <see cref="Training"/>):
/// a model of its own (classes -> a fresh module), its own data, more sinks. The CLI passes none.
/// </summary>
sealed record RunParts(Func<int, nn.Module<Tensor, Tensor>>? Model, RunData? Data, IReadOnlyList<TrainingSink> Sinks)
{
    public static readonly RunParts FromConfig = new(null, null, []);

    /// <summary>A resumed run gets what it started with: a model of one's own again (and no model for a registry run), data of one's own again.</summary>
    public void RequireSameKind(RunConfig config, string folder)
    {
        if (Model is not null && !config.ModelOptions.Own)
            throw new BadInputException($"{folder} trained the registry model {config.Model}: resume it without a model of your own (Training.Model)");
        if (Model is null && config.ModelOptions.Own)
            throw new BadInputException($"{folder} trained {config.Model}, a model of your own: resume it from code with the same Training.Model");
        if (Data is null && config.Data.Name == DataConfig.Own)
            throw new BadInputException($"{folder} trained on data given in code ({config.Data.Root}): resume it from code with the same Training.Data");
    }

    /// <summary>
    /// Pretrained weights, an MLP head and fine-tuning's frozen stages need to know where a model's
    /// head and stages are: a registry model, or a model of one's own that is a <see cref="ClassifierModel"/>.
    /// </summary>
    public void RequireClassifierFeatures(RunConfig config, nn.Module<Tensor, Tensor> model)
    {
        if (Model is null) return;
        if (config.Init.Weights.Length > 0)
            throw new BadInputException($"init.weights loads weights into registry models only; model {config.Model} is your own: load its weights before training");
        if (config.Head.Type == HeadType.Mlp)
            throw new BadInputException($"head.type: mlp replaces a registry model's head; model {config.Model} is your own: build the head into it");
        if (config.Finetune.Active && model is not ClassifierModel)
            throw new BadInputException($"finetune needs a model that names its head and stages (a ClassifierModel); model {config.Model} is a plain module");
    }
}
