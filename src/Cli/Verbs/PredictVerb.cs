using System.Globalization;
using Trainer.Data;
using Trainer.Recipes.Runs;

namespace Trainer.Cli.Verbs;

public static class PredictVerb
{
    public const string Help = """
        trainer predict --checkpoint FILE --images DIR [--out FILE.csv] [--logits] [--device D] [--batch N]
          The top-5 classes and their probabilities (softmax) for every image under DIR, at any
          depth (.jpg .jpeg .png .bmp .gif .webp), through the checkpoint's evaluation transform
          (image folder runs: resize and centre crop; CIFAR runs: resized to 32x32), with the
          class names of its run. Without --out a table; see docs/predict.md.
          --out FILE.csv  write file,top1,top1_prob,top5 per image instead (top5: name:prob;...)
          --logits        with --out: add the raw logits, logit_0 ... logit_{N-1}
          --device        auto (default: the run's setting), cpu or cuda
          --batch         images per forward pass (default 256)
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("predict", args, ["checkpoint", "images", "out", "device", "batch"], ["logits"]);
        var checkpoint = a.Value("checkpoint") ?? throw new BadInputException("'trainer predict' needs --checkpoint FILE");
        var images = a.Value("images") ?? throw new BadInputException("'trainer predict' needs --images DIR");
        var csv = a.Value("out");
        if (a.Has("logits") && csv is null) throw new BadInputException("'trainer predict': --logits adds columns to the CSV; give --out FILE.csv too");
        if (csv is not null) PredictionCsv.CheckTarget(csv);
        var result = Prediction.Run(checkpoint, images, a.Value("device"), a.IntValue("predict", "batch", 256));
        if (csv is not null)
        {
            PredictionCsv.Write(csv, result, a.Has("logits"));
            output.WriteLine($"{result.Images.Count} predictions written to {csv}");
        }
        else PrintTable(result, output);
        return 0;
    }

    static void PrintTable(PredictionResult result, TextWriter output)
    {
        output.WriteLine($"{result.Model}, {result.Classes.Count} classes; {result.Transform}");
        var rows = result.Images.Select(image =>
        {
            var top = image.Top(Prediction.TopK);
            var others = string.Join("  ", top.Skip(1).Select(t => $"{result.Classes[t.Class]} {Probability(t.Probability)}"));
            return (image.File, Top1: result.Classes[top[0].Class], Prob: Probability(top[0].Probability), Others: others);
        }).ToList();
        int fileWidth = Math.Max(4, rows.Max(r => r.File.Length)), classWidth = Math.Max(4, rows.Max(r => r.Top1.Length));
        int othersCount = Math.Min(Prediction.TopK, result.Classes.Count) - 1;
        output.WriteLine($"{"file".PadRight(fileWidth)}  {"top1".PadRight(classWidth)}  {"prob",6}  {(othersCount > 0 ? $"next {othersCount}" : "")}".TrimEnd());
        foreach (var r in rows)
            output.WriteLine($"{r.File.PadRight(fileWidth)}  {r.Top1.PadRight(classWidth)}  {r.Prob,6}  {r.Others}".TrimEnd());
        output.WriteLine($"{rows.Count} image{(rows.Count == 1 ? "" : "s")}");
    }

    static string Probability(float p) => p.ToString("0.0000", CultureInfo.InvariantCulture);
}
