using Trainer.Data;
using Trainer.Models;
using Trainer.Recipes.Config;

namespace Trainer.Recipes.Runs;

/// <summary>The network a config describes: the registered model with the config's head, for training, evaluation and prediction alike.</summary>
internal static class RunModel
{
    public static ClassifierModel Create(RunConfig config, int classes)
    {
        if (config.ModelOptions.Own)
            throw new BadInputException($"{config.Model} is a model of your own (trained through Training.Model): trainer cannot build it; resume, evaluate or export it from code");
        var model = ModelRegistry.Create(config.Model, config.ModelOptions.ToOptions(classes));
        if (config.ModelOptions.ZeroInitResidual)
            foreach (var module in model.modules().OfType<Models.Layers.IResidualBranch>()) module.ZeroLastNorm();
        // A new classifier on pretrained features starts as torchvision's does (nn.Linear's init), not with the family's own init.
        if (config.Head.Type == HeadType.Mlp) model.ResetMlpHead(classes, config.Head.Hidden, config.Head.Dropout);
        else if (config.Init.Weights.Length > 0) model.ResetHead(classes);
        return model;
    }
}
