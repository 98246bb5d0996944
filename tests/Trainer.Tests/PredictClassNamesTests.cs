using System.Text.Json;
using Trainer.Recipes.Checkpoints;
using Xunit;

namespace Trainer.Tests;

/// <summary>`trainer predict` names an image folder's classes as its names file does (Imagenette: "tench", not n01440764).</summary>
public class PredictClassNamesTests
{
    static readonly string[] Wnids = ["n01440764", "n02102040", "n02979186"];
    static readonly string[] Names = ["tench", "English springer", "cassette player"];

    /// <summary>Three Imagenette classes of ../shared/data/imagenette-160 (four training and two validation images each) with its classes.txt.</summary>
    static TempDir CopyImagenette()
    {
        var source = Path.Combine(TestPaths.SharedData, "imagenette-160");
        var dir = new TempDir();
        foreach (var (split, count) in new[] { ("train", 4), ("val", 2) })
            foreach (var wnid in Wnids)
            {
                Directory.CreateDirectory(dir[$"{split}/{wnid}"]);
                foreach (var file in Directory.GetFiles(Path.Combine(source, split, wnid)).Order(StringComparer.Ordinal).Take(count))
                    File.Copy(file, dir[$"{split}/{wnid}/{Path.GetFileName(file)}"]);
            }
        File.Copy(Path.Combine(source, "classes.txt"), dir["classes.txt"]);
        return dir;
    }

    /// <summary>The class names in the top5 column of every row of a prediction CSV.</summary>
    static HashSet<string> PredictedNames(string checkpoint, string images, string csv)
    {
        var result = Cli.Run("predict", "--checkpoint", checkpoint, "--images", images, "--out", csv);
        Assert.True(result.ExitCode == 0, result.Error);
        var rows = File.ReadAllLines(csv).Skip(1).ToList();
        Assert.Equal(6, rows.Count);
        // No name here holds a comma, so the columns split plainly.
        return rows.SelectMany(r => r.Split(',')[3].Split(';').Select(e => e[..e.LastIndexOf(':')])).ToHashSet();
    }

    [Fact]
    public void Predict_names_imagenette_classes_from_its_names_file_as_data_inspect_does()
    {
        using var data = CopyImagenette();
        using var dir = new TempDir();
        var train = Cli.Run("train", "--out", dir["run"], "--set", "model=resnet20", "--set", "data.name=imagefolder", "--set", $"data.root={data.Path}",
            "--set", "data.image_size=32", "--set", "data.resize_size=36", "--set", "data.workers=1", "--set", "train.batch_size=4", "--set", "train.epochs=1",
            "--set", "log.progress=false", "--set", "log.histograms=false", "--set", "log.image_grid=false");
        Assert.True(train.ExitCode == 0, train.Error);
        var checkpoint = dir["run/checkpoints/last.ckpt"];

        // `data inspect` reads the names from classes.txt; predict shows the same ones.
        var inspect = Cli.Run("data", "inspect", data.Path, "--json");
        Assert.True(inspect.ExitCode == 0, inspect.Error);
        using (var doc = JsonDocument.Parse(inspect.Output))
            Assert.Equal(Names, doc.RootElement.GetProperty("classes").EnumerateArray().Select(c => c.GetProperty("display_name").GetString()));
        var meta = Checkpoint.ReadMeta(checkpoint);
        Assert.Equal(Wnids, meta.Classes);                  // eval still finds the class folders by these
        var eval = Cli.Run("eval", "--checkpoint", checkpoint, "--json");
        Assert.True(eval.ExitCode == 0, eval.Error);
        Assert.Contains("\"samples\":6", eval.Output);
        Assert.Equal(Names, meta.ClassNames);
        Assert.Equal(Names.ToHashSet(), PredictedNames(checkpoint, data["val"], dir["p.csv"]));
        var table = Cli.Run("predict", "--checkpoint", checkpoint, "--images", data["val"]);
        Assert.True(table.ExitCode == 0, table.Error);
        var rows = table.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[2..^1];
        Assert.Equal(6, rows.Length);
        foreach (var row in rows)
        {
            // After the file (n01440764/...JPEG): names, never a folder id.
            var predicted = row[row.IndexOf(' ')..];
            Assert.DoesNotContain("n0", predicted);
            Assert.Contains(Names, n => predicted.TrimStart().StartsWith(n));
        }

        // A checkpoint written before the names were saved: they come from the run's names file while it is there.
        var old = dir["old.ckpt"];
        using (var c = Checkpoint.Load(checkpoint))
            new Checkpoint { Meta = c.Meta with { ClassNames = null }, Model = c.Model, Optimizer = c.Optimizer, Rng = c.Rng }.Save(old);
        Assert.Null(Checkpoint.ReadMeta(old).ClassNames);
        Assert.Equal(Names.ToHashSet(), PredictedNames(old, data["val"], dir["old.csv"]));
        // Without the names file, the old checkpoint falls back to the folder names; the new one carries its names.
        File.Delete(data["classes.txt"]);
        Assert.Equal(Wnids.ToHashSet(), PredictedNames(old, data["val"], dir["old2.csv"]));
        Assert.Equal(Names.ToHashSet(), PredictedNames(checkpoint, data["val"], dir["p2.csv"]));
    }
}
