using System.Globalization;
using Trainer.Data;
using Trainer.Models;
using Trainer.Models.Summary;

namespace Trainer.Recipes.Reproduction;

/// <summary>
/// One model in the course's comparison (Canziani et al. 2016): its costs for one image at its
/// native input, counted by <see cref="CostSummary"/> as `trainer summary` counts them, and the
/// top-1 accuracy its paper reports (from the recipe catalog; null when no recipe reports one).
/// </summary>
public sealed record ComparedModel(string Name, string Family, long[] Input, long Params, long Macs, long ActivationBytes, double? ReportedTop1Accuracy, string? Recipe);

/// <summary>The rows of `trainer models --chart/--csv`: costs measured here, accuracies as the papers report them.</summary>
public static class ModelComparison
{
    /// <summary>
    /// The ImageNet recipe whose paper figure stands for <paramref name="model"/>: the one named
    /// after the model (`resnet50-imagenet` for resnet50, rather than a later paper's recipe for the
    /// same network), else the first by name; null when no ImageNet recipe reports a top-1 error.
    /// </summary>
    public static Recipe? ReportingRecipe(string model)
    {
        var candidates = RecipeCatalog.All
            .Where(r => r.Config.Model == model && r.Info.ReportedTop1Error is not null && r.Info.Dataset.Contains("ImageNet", StringComparison.Ordinal))
            .ToList();
        return candidates.FirstOrDefault(r => r.Name == model.Replace('_', '-') + "-imagenet") ?? candidates.FirstOrDefault();
    }

    /// <summary>The models charted by default: every registered model with an ImageNet recipe that reports its error.</summary>
    public static IReadOnlyList<string> DefaultModels() =>
        ModelRegistry.All.Where(e => ReportingRecipe(e.Name) is not null).Select(e => e.Name).ToList();

    /// <summary>Measures <paramref name="models"/> (registry names; an unknown one is bad input), in the order given.</summary>
    public static List<ComparedModel> Measure(IReadOnlyList<string> models)
    {
        foreach (var name in models)
            if (!ModelRegistry.Contains(name)) throw new BadInputException(ModelRegistry.UnknownMessage(name));
        return models.Select(name =>
        {
            var entry = ModelRegistry.Get(name);
            using var model = entry.Create();
            var cost = CostSummary.Measure(name, model, entry.NativeInput);
            var recipe = ReportingRecipe(name);
            return new ComparedModel(name, entry.Family, entry.NativeInput, cost.Params, cost.Macs, cost.ActivationBytes,
                recipe is null ? null : 1 - recipe.Info.ReportedTop1Error, recipe?.Name);
        }).ToList();
    }

    public static void WriteCsv(IReadOnlyList<ComparedModel> rows, string path)
    {
        var lines = new List<string> { "model,family,input,params,macs,activation_bytes,reported_top1_accuracy,recipe" };
        lines.AddRange(rows.Select(r => string.Join(',', r.Name, r.Family, string.Join('x', r.Input), r.Params, r.Macs, r.ActivationBytes,
            r.ReportedTop1Accuracy?.ToString("0.####", CultureInfo.InvariantCulture) ?? "", r.Recipe ?? "")));
        File.WriteAllLines(path, lines);
    }
}
