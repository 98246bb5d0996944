using System.Reflection;
using Trainer.Data;
using Trainer.Recipes.Config;

namespace Trainer.Recipes.Reproduction;

/// <summary>One paper recipe: its config as shipped (the paper's settings) and where it comes from.</summary>
public sealed record Recipe(string Name, RunConfig Config)
{
    public RecipeConfig Info => Config.Recipe;
}

/// <summary>
/// The paper recipes: every config in configs/ (compiled into the binary) that carries a
/// <c>recipe:</c> section. A recipe's name is its file name without .yaml.
/// </summary>
public static class RecipeCatalog
{
    const string Prefix = "Trainer.Recipes.configs.";

    static readonly Lazy<IReadOnlyList<Recipe>> Recipes = new(LoadAll);

    public static IReadOnlyList<Recipe> All => Recipes.Value;

    public static Recipe? Find(string name) => All.FirstOrDefault(r => r.Name == name);

    /// <summary>The recipe called <paramref name="name"/>, or bad input listing the names.</summary>
    public static Recipe Get(string name) => Find(name)
        ?? throw new BadInputException($"unknown recipe '{name}' (see 'trainer recipes': {string.Join(", ", All.Select(r => r.Name))})");

    static IReadOnlyList<Recipe> LoadAll()
    {
        var assembly = Assembly.GetExecutingAssembly();
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(Prefix) && n.EndsWith(".yaml"))
            .Select(n => n[Prefix.Length..^".yaml".Length])
            .Select(name => new Recipe(name, ConfigLoader.FromYaml(ConfigLoader.EmbeddedYaml(name + ".yaml"), $"<embedded recipe: configs/{name}.yaml>")))
            .Where(r => r.Info.Name.Length > 0)
            .OrderBy(r => r.Name, StringComparer.Ordinal)
            .ToList();
    }
}
