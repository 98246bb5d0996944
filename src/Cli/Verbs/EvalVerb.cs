using System.Globalization;
using System.Text.Json;
using Trainer.Recipes.Runs;

namespace Trainer.Cli.Verbs;

public static class EvalVerb
{
    public const string Help = """
        trainer eval --checkpoint FILE [--data DIR] [--device D] [--batch N] [--ten-crop] [--json]
          Evaluates a checkpoint on the test split of the data set it was trained on (an image
          folder's validation split): loss, top-1, top-5, with the run's evaluation transform.
          --data      read that data set from another folder
          --ten-crop  image folders: the ResNet paper's 10-crop test (logits averaged over the
                      four corners, the center and their mirror images)
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("eval", args, ["checkpoint", "data", "device", "batch"], ["json", "ten-crop"]);
        var path = a.Value("checkpoint") ?? throw new Data.BadInputException("'trainer eval' needs --checkpoint FILE");
        var r = CheckpointEvaluation.Run(path, a.Value("data"), a.Value("device"), a.IntValue("eval", "batch", 256), a.Has("ten-crop"));
        output.WriteLine(a.Has("json")
            ? JsonSerializer.Serialize(new { loss = r.Loss, top1 = r.Top1, top5 = r.Top5, samples = r.Samples })
            : string.Create(CultureInfo.InvariantCulture, $"{r.Samples} images: loss {r.Loss:F4}  top1 {r.Top1 * 100:F2}%  top5 {r.Top5 * 100:F2}%"));
        return 0;
    }
}
