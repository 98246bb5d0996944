using System.Text.Json;
using Trainer.Data;
using Trainer.Recipes.Config;
using Trainer.Recipes.Runs;

namespace Trainer.Cli.Verbs;

public static class BenchVerb
{
    public const string Help = """
        trainer bench --data DIR [--input CxHxW] [--workers N] [--batch N] [--epochs N] [--json]
          Images per second of the training input pipeline alone (read, decode, RandomResizedCrop,
          flip, normalise, batch) on an image folder (DIR/train/<class>/*.jpg) or cifar10-sample;
          one warm-up epoch, then N timed epochs (default 1). Defaults: 3x224x224, 2 workers, batch 256.
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("bench", args, ["data", "input", "workers", "batch", "epochs"], ["json"]);
        var dir = a.Value("data") ?? throw new BadInputException("'trainer bench': give --data DIR (the model benchmark, --model, is not built yet)");
        int size = 224;
        if (a.Value("input") is { } input)
        {
            var parts = input.Split('x');
            if (parts.Length != 3 || parts[0] != "3" || !int.TryParse(parts[1], out size) || !int.TryParse(parts[2], out int w) || w != size || size < 8)
                throw new BadInputException($"'trainer bench': --input must be 3xSxS (square RGB, S >= 8), got '{input}'");
        }
        var data = dir == "cifar10-sample"
            ? new DataConfig { Name = "cifar10-sample", Workers = a.IntValue("bench", "workers", 2) }
            : new DataConfig { Name = DataSources.ImageFolderName, Root = dir, ImageSize = size, ResizeSize = size, Workers = a.IntValue("bench", "workers", 2) };
        var result = PipelineBenchmark.Run(data, a.IntValue("bench", "batch", 256), a.IntValue("bench", "epochs", 1));
        if (a.Has("json"))
            output.WriteLine(JsonSerializer.Serialize(new
            {
                data = result.Data, workers = result.Workers, images_per_s = Math.Round(result.ImagesPerSecond, 1),
                batch = result.Batch, input = new[] { 3, dir == "cifar10-sample" ? 32 : result.ImageSize, dir == "cifar10-sample" ? 32 : result.ImageSize },
                images = result.Images, seconds = Math.Round(result.Seconds, 3),
            }));
        else
            output.WriteLine($"{result.Data}: {result.ImagesPerSecond:F0} images/s ({result.Images:N0} images in {result.Seconds:F2} s, {result.Workers} workers, batch {result.Batch})");
        return 0;
    }
}
