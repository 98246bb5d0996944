using Trainer.Data;
using Trainer.Models;
using static TorchSharp.torch;

namespace Trainer.Recipes.Weights;

/// <summary>
/// Loads named tensors into a model as PyTorch's strict load_state_dict does, except for the keys
/// under the skipped prefixes: an unknown key, a missing key or a wrong shape is bad input listing
/// the first offending keys with both shapes, and nothing is copied unless everything fits.
/// </summary>
internal static class WeightsFit
{
    /// <summary>The skip entry that stands for the model's classifier (and an MLP head's hidden layers), whatever the family calls it.</summary>
    public const string HeadToken = "head";

    /// <summary>The state-dict prefixes of the model's classifier: "fc." for ResNets, "classifier.6." for VGG, plus an MLP head's hidden layers.</summary>
    public static IReadOnlyList<string> HeadPrefixes(ClassifierModel model)
    {
        var name = model.named_modules().First(m => ReferenceEquals(m.module, model.Head)).name;
        var prefixes = new List<string> { name + "." };
        if (model.HiddenHead is not null) prefixes.Add(ClassifierModel.HiddenHeadName + ".");
        return prefixes;
    }

    /// <summary>The skip list as key prefixes ("head" expanded; "layer4" matches "layer4.").</summary>
    public static IReadOnlyList<string> Prefixes(ClassifierModel model, IEnumerable<string> skip) =>
        skip.SelectMany(s => s == HeadToken ? HeadPrefixes(model) : [s.EndsWith('.') ? s : s + "."]).ToList();

    static bool Skipped(string key, IReadOnlyList<string> prefixes) => prefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal));

    /// <summary>What does not fit, one short phrase each ("unknown key 'fc.bias' [10]", "shape of 'conv1.weight': file [64, 3, 7, 7], model [16, 3, 3, 3]").</summary>
    public static List<string> Problems(nn.Module model, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyList<string> skip)
    {
        var expected = StateDictOrder.Entries(model).Where(e => !Skipped(e.Name, skip)).ToList();
        var expectedNames = expected.Select(e => e.Name).ToHashSet();
        var problems = new List<string>();
        foreach (var (name, tensor) in expected)
        {
            if (!tensors.TryGetValue(name, out var given)) problems.Add($"missing key '{name}' {Shape(tensor)}");
            else if (!given.shape.SequenceEqual(tensor.shape)) problems.Add($"shape of '{name}': file {Shape(given)}, model {Shape(tensor)}");
        }
        foreach (var (name, tensor) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
            if (!Skipped(name, skip) && !expectedNames.Contains(name)) problems.Add($"unknown key '{name}' {Shape(tensor)}");
        // Wrong shapes say the most about a mismatch (another architecture or class count): list them first.
        return problems.OrderBy(p => p.StartsWith("shape") ? 0 : p.StartsWith("unknown") ? 1 : 2).ToList();
    }

    /// <summary>Copies every fitting tensor into <paramref name="model"/>, or throws naming <paramref name="source"/> and the first problems.</summary>
    public static int Load(ClassifierModel model, IReadOnlyDictionary<string, Tensor> tensors, IEnumerable<string> skip, string source, string modelName)
    {
        var prefixes = Prefixes(model, skip);
        var problems = Problems(model, tensors, prefixes);
        if (problems.Count > 0) throw new BadInputException(Describe(source, modelName, problems));
        int copied = 0;
        using var _ = no_grad();
        foreach (var (name, tensor) in StateDictOrder.Entries(model))
        {
            if (Skipped(name, prefixes)) continue;
            tensor.copy_(tensors[name]);
            copied++;
        }
        return copied;
    }

    public static string Describe(string source, string modelName, IReadOnlyList<string> problems) =>
        $"weights {source} do not fit model {modelName}: {string.Join("; ", problems.Take(3))}" +
        (problems.Count > 3 ? $" (and {problems.Count - 3} more)" : "");

    static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";
}
