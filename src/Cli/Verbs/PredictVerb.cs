using System.Globalization;
using Trainer.Data;
using Trainer.Recipes.Runs;

namespace Trainer.Cli.Verbs;

public static class PredictVerb
{
    public const string Help = """
        trainer predict --checkpoint FILE --images DIR [--out FILE.csv] [--logits] [--device D] [--batch N]
        trainer predict --model FILE.onnx --images DIR [--out FILE.csv] [--logits] [--batch N]
          The top-5 classes and their probabilities (softmax) for every image under DIR, at any
          depth (.jpg .jpeg .png .bmp .gif .webp), through the checkpoint's evaluation transform
          (image folder runs: resize and centre crop; CIFAR runs: resized to 32x32), with the
          class names of its run. Without --out a table; see docs/predict.md.
          --model         an ONNX model written by 'trainer export', run by ONNX Runtime (CPU);
                          its metadata gives the transform and class names (docs/deploy.md)
          --out FILE.csv  write file,top1,top1_prob,top5 per image instead (top5: name:prob;...)
          --logits        with --out: add the raw logits, logit_0 ... logit_{N-1}
          --device        auto, cpu or cuda (default: the run's own setting)
          --batch         images per forward pass (default 256)
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("predict", args, ["checkpoint", "model", "images", "out", "device", "batch"], ["logits"]);
        var checkpoint = a.Value("checkpoint");
        var model = a.Value("model");
        if (checkpoint is null == model is null) throw new BadInputException("'trainer predict' needs either --checkpoint FILE or --model FILE.onnx");
        if (model is not null && a.Value("device") is not null) throw new BadInputException("'trainer predict --model' runs on ONNX Runtime's CPU provider; --device applies to --checkpoint only");
        var images = a.Value("images") ?? throw new BadInputException("'trainer predict' needs --images DIR");
        var csv = a.Value("out");
        if (a.Has("logits") && csv is null) throw new BadInputException("'trainer predict': --logits adds columns to the CSV; give --out FILE.csv too");
        if (csv is not null) PredictionCsv.CheckTarget(csv);
        int batch = a.IntValue("predict", "batch", 256);
        using IImagePredictor prediction = model is not null
            ? Recipes.Deploy.OnnxPrediction.Open(model, images, batch)
            : Prediction.Open(checkpoint!, images, a.Value("device"), batch);
        if (csv is not null)
        {
            int rows = PredictionCsv.Write(csv, prediction.Classes, prediction.Run(), a.Has("logits"));
            output.WriteLine($"{rows} predictions written to {csv}");
        }
        else PrintTable(prediction, output);
        return 0;
    }

    /// <summary>A row per image as its batch finishes: file, top-1 and its probability, the next four with theirs.</summary>
    static void PrintTable(IImagePredictor prediction, TextWriter output)
    {
        var classes = prediction.Classes;
        output.WriteLine($"{prediction.Model}, {classes.Count} classes; {prediction.Transform}");
        int fileWidth = Math.Max(4, prediction.Files.Max(f => f.Relative.Length));
        int classWidth = Math.Clamp(classes.Max(c => c.Length), 4, 24);
        int others = Math.Min(Prediction.TopK, classes.Count) - 1;
        output.WriteLine($"{"file".PadRight(fileWidth)}  {"top1".PadRight(classWidth)}  {"prob",6}  {(others > 0 ? $"next {others}" : "")}".TrimEnd());
        int count = 0;
        foreach (var image in prediction.Run())
        {
            var top = image.Top(Prediction.TopK);
            var next = string.Join("  ", top.Skip(1).Select(t => $"{classes[t.Class]} {Probability(t.Probability)}"));
            output.WriteLine($"{image.File.PadRight(fileWidth)}  {classes[top[0].Class].PadRight(classWidth)}  {Probability(top[0].Probability),6}  {next}".TrimEnd());
            count++;
        }
        output.WriteLine($"{count} image{(count == 1 ? "" : "s")}");
    }

    static string Probability(float p) => p.ToString("0.0000", CultureInfo.InvariantCulture);
}
