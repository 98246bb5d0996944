using System.Text.Json;
using Trainer.Data;
using Trainer.Data.Cifar;
using Trainer.Data.ImageFolder;

namespace Trainer.Cli.Verbs;

public static class DataVerb
{
    public const string Help = """
        trainer data download cifar10|cifar100 [--dir DIR] [--url URL]
          Fetches the official binary archive, verifies its MD5 and extracts it into DIR
          (default data/cifar10 or data/cifar100). --url fetches the same archive from a mirror.
        trainer data inspect DIR [--json]
          An image folder (DIR/train/<class>/*.jpg, DIR/val/..., or DIR/<class>/*.jpg): its classes,
          image counts per split and class, and image sizes (from the file headers).
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("data", args, ["dir", "url"], ["json"]);
        if (a.Positionals.Count == 2 && a.Positionals[0] == "inspect") return Inspect(a.Positionals[1], a.Has("json"), output);
        if (a.Positionals.Count != 2 || a.Positionals[0] != "download")
            throw new BadInputException("usage: trainer data download cifar10|cifar100 [--dir DIR] | trainer data inspect DIR [--json]");
        var format = CifarFormat.ByName(a.Positionals[1]);
        var official = CifarDownloader.OfficialArchive(format);
        var archive = a.Value("url") is { } url ? official with { Url = url } : official;
        CifarDownloader.Download(format, a.Value("dir") ?? Path.Combine("data", format.Name), archive, output);
        return 0;
    }

    static int Inspect(string root, bool json, TextWriter output)
    {
        var splits = FolderInspection.Inspect(root);
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                root,
                classes = splits[0].Classes.Select(c => new { name = c.Name, display_name = c.DisplayName }),
                splits = splits.Select(s => new
                {
                    split = s.Split, path = s.Path, images = s.Images,
                    counts = s.Classes.ToDictionary(c => c.Name, c => c.Images),
                    width = new { min = s.MinWidth, median = s.MedianWidth, max = s.MaxWidth },
                    height = new { min = s.MinHeight, median = s.MedianHeight, max = s.MaxHeight },
                }),
            }));
            return 0;
        }
        foreach (var s in splits)
        {
            output.WriteLine($"{s.Split}: {s.Images:N0} images in {s.Classes.Count} classes ({s.Path})");
            output.WriteLine($"  width {s.MinWidth}-{s.MaxWidth} (median {s.MedianWidth}), height {s.MinHeight}-{s.MaxHeight} (median {s.MedianHeight})");
            foreach (var c in s.Classes)
                output.WriteLine($"  {c.Name,-24} {(c.DisplayName == c.Name ? "" : c.DisplayName),-24} {c.Images,8:N0}");
        }
        return 0;
    }
}
