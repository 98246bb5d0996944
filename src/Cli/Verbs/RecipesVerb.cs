using System.Globalization;
using System.Text.Json;
using Trainer.Recipes.Reproduction;

namespace Trainer.Cli.Verbs;

public static class RecipesVerb
{
    public const string Help = """
        trainer recipes [--json]
          Lists the paper recipes: name, paper, model, data set and the top-1 (top-5) error the
          paper reported. Train one with 'trainer train --recipe NAME --set data.root=DIR'.
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("recipes", args, [], ["json"]);
        if (a.Positionals.Count > 0) throw new Data.BadInputException($"'trainer recipes': unexpected argument '{a.Positionals[0]}'");
        var rows = RecipeCatalog.All.Select(r => new
        {
            name = r.Name,
            paper = r.Info.Paper,
            section = r.Info.Section,
            model = r.Config.Model,
            dataset = r.Info.Dataset,
            reported_top1_error = r.Info.ReportedTop1Error,
            reported_top5_error = r.Info.ReportedTop5Error,
            evaluation = r.Info.Evaluation,
        }).ToList();
        if (a.Has("json"))
        {
            output.WriteLine(JsonSerializer.Serialize(rows));
            return 0;
        }
        static string Percent(double? f) => f is double v ? (v * 100).ToString("F2", CultureInfo.InvariantCulture) + "%" : "-";
        output.WriteLine($"{"recipe",-26} {"model",-20} {"data set",-22} {"top-1 err",9} {"top-5 err",9}  paper");
        foreach (var r in rows)
            output.WriteLine($"{r.name,-26} {r.model,-20} {r.dataset,-22} {Percent(r.reported_top1_error),9} {Percent(r.reported_top5_error),9}  {r.paper}");
        return 0;
    }
}
