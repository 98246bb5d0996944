using System.Globalization;
using System.Text.Json;
using Trainer.Recipes.Runs;

namespace Trainer.Cli.Verbs;

public static class EvalVerb
{
    public const string Help = """
        trainer eval --checkpoint FILE [--data DIR] [--device D] [--batch N] [--json]
          Evaluates a checkpoint on the test split of the data set it was trained on: loss, top-1, top-5.
          --data      read that data set from another folder
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("eval", args, ["checkpoint", "data", "device", "batch"], ["json"]);
        var path = a.Value("checkpoint") ?? throw new Data.BadInputException("'trainer eval' needs --checkpoint FILE");
        var r = CheckpointEvaluation.Run(path, a.Value("data"), a.Value("device"), a.IntValue("eval", "batch", 256));
        output.WriteLine(a.Has("json")
            ? JsonSerializer.Serialize(new { loss = r.Loss, top1 = r.Top1, top5 = r.Top5, samples = r.Samples })
            : string.Create(CultureInfo.InvariantCulture, $"{r.Samples} images: loss {r.Loss:F4}  top1 {r.Top1 * 100:F2}%  top5 {r.Top5 * 100:F2}%"));
        return 0;
    }
}
