using System.Text.Json;
using Trainer.Models;

namespace Trainer.Cli.Verbs;

public static class ModelsVerb
{
    public const string Help = """
        trainer models [--json]
          Lists every registered model with its family, the data it was designed for and its parameters.
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("models", args, [], ["json"]);
        var rows = ModelRegistry.All.Select(e =>
            new { name = e.Name, family = e.Family, dataset = e.Dataset, @params = ModelRegistry.CountParametersWithoutWeights(e) }).ToList();
        if (a.Has("json")) output.WriteLine(JsonSerializer.Serialize(rows));
        else foreach (var r in rows) output.WriteLine($"{r.name,-18} {r.family,-14} {r.dataset,-8} {r.@params,12:N0}");
        return 0;
    }
}
