using System.Text.Json;
using Trainer.Data;
using Trainer.Models;

namespace Trainer.Cli.Verbs;

public static class ModelsVerb
{
    public const string Help = """
        trainer models [--json]
          Lists every registered model with its family, the data it was designed for and its parameters.
        trainer models --chart FILE.png [--csv FILE.csv] [--models a,b,c]
          The course's comparison of architectures (after Canziani et al. 2016): top-1 accuracy as each
          paper reports it (the recipe catalog) against multiply-adds per image, circle area the
          parameters, and against forward activation memory per image; costs counted as `summary`
          counts them at each model's native input. Default: every model with an ImageNet recipe that
          reports its error; a model without one is left off the chart (the CSV keeps it).
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("models", args, ["chart", "csv", "models"], ["json"]);
        if (a.Value("chart") is not null || a.Value("csv") is not null) return Compare(a, output);
        var rows = ModelRegistry.All.Select(e =>
            new { name = e.Name, family = e.Family, dataset = e.Dataset, @params = ModelRegistry.CountParametersWithoutWeights(e) }).ToList();
        if (a.Has("json")) output.WriteLine(JsonSerializer.Serialize(rows));
        else foreach (var r in rows) output.WriteLine($"{r.name,-18} {r.family,-14} {r.dataset,-8} {r.@params,12:N0}");
        return 0;
    }

    static int Compare(Arguments a, TextWriter output)
    {
        var chart = a.Value("chart");
        var csv = a.Value("csv");
        if (chart is not null && !chart.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
            throw new BadInputException($"--chart {chart}: the chart is a PNG file; name it FILE.png");
        foreach (var path in new[] { chart, csv }.OfType<string>()) RequireWritableFolder(path);
        var names = a.Value("models") is { } list
            ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : Recipes.Reproduction.ModelComparison.DefaultModels();
        if (names.Count == 0) throw new BadInputException("--models names no model (see 'trainer models')");
        var rows = Recipes.Reproduction.ModelComparison.Measure(names);
        if (chart is not null)
        {
            Recipes.Reproduction.ModelChart.Write(rows, chart);
            output.WriteLine($"chart: {chart} ({rows.Count(r => r.ReportedTop1Accuracy is not null)} models)");
        }
        if (csv is not null)
        {
            Recipes.Reproduction.ModelComparison.WriteCsv(rows, csv);
            output.WriteLine($"csv: {csv} ({rows.Count} models)");
        }
        var missing = rows.Where(r => r.ReportedTop1Accuracy is null).Select(r => r.Name).ToList();
        if (missing.Count > 0 && chart is not null)
            output.WriteLine($"note: left off the chart, no recipe reports their ImageNet accuracy: {string.Join(", ", missing)}");
        return 0;
    }

    /// <summary>Bad input, before anything is measured, when <paramref name="path"/>'s folder is missing or cannot be written.</summary>
    static void RequireWritableFolder(string path)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(folder)) throw new BadInputException($"{path}: folder {folder} does not exist");
        var probe = Path.Combine(folder, $".trainer-write-test-{Environment.ProcessId}");
        try
        {
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new BadInputException($"{path}: cannot write in {folder} ({e.Message})");
        }
    }
}
