using SkiaSharp;
using Trainer.Data;
using Trainer.Data.Cifar;
using Trainer.Data.ImageFolder;
using Trainer.Models;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Config;
using Trainer.Recipes.Runs;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>Two tiny checkpoints trained for one short epoch: ResNet-20 on the CIFAR sample (per-pixel mean) and on a 3-class image folder.</summary>
public sealed class PredictFixture : IDisposable
{
    readonly TempDir _dir = new();
    public string Cifar => _dir["cifar/checkpoints/last.ckpt"];
    public string Folder => _dir["folder/checkpoints/last.ckpt"];
    /// <summary>The image folder the second checkpoint trained on (train/ and val/, classes a, b, c).</summary>
    public TempDir Images { get; } = ImageFolderTests.MakeFolder(["a", "b", "c"], 5, withVal: true);

    public PredictFixture()
    {
        string[] quick = ["--set", "train.epochs=1", "--set", "log.progress=false", "--set", "log.histograms=false"];
        var cifar = Cli.Run(["train", "--out", _dir["cifar"], "--set", "data.subset=64", "--set", "data.val_subset=32",
            "--set", "train.batch_size=32", "--set", "data.normalize=pixel_mean", .. quick]);
        Assert.True(cifar.ExitCode == 0, cifar.Error);
        var folder = Cli.Run(["train", "--out", _dir["folder"], "--set", "model=resnet20", "--set", "data.name=imagefolder",
            "--set", $"data.root={Images.Path}", "--set", "data.image_size=32", "--set", "data.resize_size=36", "--set", "train.batch_size=5", .. quick]);
        Assert.True(folder.ExitCode == 0, folder.Error);
    }

    public void Dispose()
    {
        Images.Dispose();
        _dir.Dispose();
    }
}

public class PredictTests(PredictFixture trained, ImageFixtures fixtures) : IClassFixture<PredictFixture>, IClassFixture<ImageFixtures>
{
    static readonly string[] CifarClasses = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    internal static void AssertBadInput(Cli.Result result, params string[] expected)
    {
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("trainer: error: ", line);
        Assert.DoesNotContain(" at ", line);
        foreach (var part in expected) Assert.Contains(part, line);
    }

    /// <summary>Softmax of the checkpoint's model, built here from the checkpoint file, over <paramref name="images"/> through the evaluation loader, one row per image.</summary>
    static float[][] DirectProbabilities(string checkpointPath, Func<DataConfig, IReadOnlyList<string>, ILabelledImages> images)
    {
        using var checkpoint = Checkpoint.Load(checkpointPath);
        var config = ConfigLoader.FromYaml(checkpoint.Meta.ConfigYaml, checkpointPath);
        using var model = ModelRegistry.Create(checkpoint.Meta.Model, config.ModelOptions.ToOptions(checkpoint.Meta.NumClasses));
        SessionCheckpoint.LoadModel(model, checkpoint, checkpointPath);
        model.eval();
        var loader = DataSources.EvalLoader(config.Data, images(config.Data, checkpoint.Meta.Classes), checkpoint.Meta.Normalization, 4);
        var rows = new List<float[]>();
        using var _ = no_grad();
        foreach (var batch in loader.Epoch(0))
            using (batch)
            using (NewDisposeScope())
            {
                var p = model.call(batch.Images).softmax(1);
                for (int i = 0; i < p.shape[0]; i++) rows.Add(p[i].data<float>().ToArray());
            }
        return rows.ToArray();
    }

    /// <summary>RFC 4180 rows (quoted fields may hold commas and doubled quotes).</summary>
    static List<string[]> ReadCsv(string path)
    {
        var rows = new List<string[]>();
        foreach (var line in File.ReadAllLines(path))
        {
            var fields = new List<string>();
            var field = new System.Text.StringBuilder();
            bool quoted = false;
            for (int i = 0; i < line.Length; i++)
            {
                char c = line[i];
                if (quoted && c == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = !quoted;
                else if (c == ',' && !quoted) { fields.Add(field.ToString()); field.Clear(); }
                else field.Append(c);
            }
            fields.Add(field.ToString());
            rows.Add(fields.ToArray());
        }
        return rows;
    }

    /// <summary>The top5 column back as (class name, probability) pairs.</summary>
    static (string Name, float Probability)[] ParseTop5(string column) => column.Split(';').Select(entry =>
    {
        int colon = entry.LastIndexOf(':');
        var name = entry[..colon].Replace("%3B", ";").Replace("%25", "%");
        return (name, float.Parse(entry[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }).ToArray();

    static float F(string text) => float.Parse(text, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Writes a planar (C, H, W) CIFAR image as a PNG, placed at <paramref name="left"/> in a canvas <paramref name="width"/> wide whose margins are noise.</summary>
    static void WritePng(ImageDataset data, int index, string path, int width = 32, int left = 0)
    {
        var image = data.Image(index);
        using var bitmap = new SKBitmap(width, 32);
        var noise = new Random(index);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < width; x++)
            {
                int sx = x - left;
                bitmap.SetPixel(x, y, sx >= 0 && sx < 32
                    ? new SKColor(image[y * 32 + sx], image[1024 + y * 32 + sx], image[2048 + y * 32 + sx])
                    : new SKColor((byte)noise.Next(256), (byte)noise.Next(256), (byte)noise.Next(256)));
            }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, png.ToArray());
    }

    [Fact]
    public void Cifar_probabilities_equal_a_direct_forward_of_the_checkpoints_model_through_the_evaluation_loader()
    {
        // Five test images of the embedded sample as lossless PNGs, one of them 40 px wide with noise in the 4 px margins
        // (the central 32x32 crop must give exactly the original image), predicted from the files.
        var test = CifarSample.LoadTest();
        using var dir = new TempDir();
        string[] files = ["0.png", "deep/1.png", "deep/er/2.png", "3.png", "wide.png"];
        for (int i = 0; i < 4; i++) WritePng(test, i, dir[files[i]]);
        WritePng(test, 4, dir["wide.png"], width: 40, left: 4);
        var result = Cli.Run("predict", "--checkpoint", trained.Cifar, "--images", dir.Path, "--out", dir["out/p.csv"], "--logits");
        Assert.True(result.ExitCode == 0, result.Error);

        var expected = DirectProbabilities(trained.Cifar, (_, _) => test.Subset([0, 1, 2, 3, 4]));
        var rows = ReadCsv(dir["out/p.csv"]);
        Assert.Equal(["file", "top1", "top1_prob", "top5", .. Enumerable.Range(0, 10).Select(i => $"logit_{i}")], rows[0]);
        // Sorted by relative path with '/' separators.
        Assert.Equal(["0.png", "3.png", "deep/1.png", "deep/er/2.png", "wide.png"], rows.Skip(1).Select(r => r[0]));
        foreach (var row in rows.Skip(1))
        {
            Assert.Equal(14, row.Length);
            var p = expected[Array.IndexOf(files, row[0])];
            var top5 = ParseTop5(row[3]);
            Assert.Equal(5, top5.Length);
            Assert.True(top5.Zip(top5.Skip(1)).All(t => t.First.Probability >= t.Second.Probability), row[3]);
            var ranked = Enumerable.Range(0, 10).OrderByDescending(k => p[k]).Take(5).ToArray();
            Assert.Equal(ranked.Select(k => CifarClasses[k]), top5.Select(t => t.Name));
            foreach (var (name, probability) in top5) Assert.Equal(p[Array.IndexOf(CifarClasses, name)], probability, 1e-5f);
            Assert.Equal(top5[0].Name, row[1]);
            Assert.Equal(p[ranked[0]], F(row[2]), 1e-5f);
            // softmax(logits) gives the probabilities.
            using var logits = tensor(row[4..].Select(F).ToArray());
            var softmax = logits.softmax(0).data<float>().ToArray();
            for (int k = 0; k < 10; k++) Assert.Equal(p[k], softmax[k], 1e-5f);
        }
    }

    [Fact]
    public void Image_folder_probabilities_equal_a_direct_forward_through_the_runs_evaluation_transform()
    {
        var val = Path.Combine(trained.Images.Path, "val");
        using var dir = new TempDir();
        var csv = dir["p.csv"];
        var result = Cli.Run("predict", "--checkpoint", trained.Folder, "--images", val, "--out", csv, "--device", "cpu", "--batch", "4");
        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("15 predictions", result.Output);

        ImageFolderSet valSet = null!;
        var expected = DirectProbabilities(trained.Folder, (_, classes) => valSet = ImageFolderSet.LoadSplit(val, classes));
        var rows = ReadCsv(csv);
        Assert.Equal(["file", "top1", "top1_prob", "top5"], rows[0]);
        Assert.Equal(16, rows.Count);
        foreach (var row in rows.Skip(1))
        {
            Assert.Equal(4, row.Length);
            int index = Array.FindIndex(valSet.Files, f => f == Path.Combine(val, row[0]));
            Assert.True(index >= 0, $"{row[0]} is not an image of {val}");
            var p = expected[index];
            var top = ParseTop5(row[3]);
            // Three classes: all three listed, most probable first, named as the run named them.
            Assert.Equal(["a", "b", "c"], top.Select(t => t.Name).Order());
            Assert.True(top[0].Probability >= top[1].Probability && top[1].Probability >= top[2].Probability, row[3]);
            foreach (var (name, probability) in top) Assert.Equal(p[name[0] - 'a'], probability, 1e-5f);
            Assert.Equal(top[0].Name, row[1]);
            Assert.Equal(1.0, top.Sum(t => t.Probability), 1e-5);
        }
    }

    [Fact]
    public void Without_out_a_table_lists_every_image_with_its_top_class()
    {
        var val = Path.Combine(trained.Images.Path, "val");
        var result = Cli.Run("predict", "--checkpoint", trained.Folder, "--images", val);
        Assert.True(result.ExitCode == 0, result.Error);
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("shorter side resized to 36 px, the central 32x32", lines[0]);
        Assert.StartsWith("file", lines[1]);
        var images = ImageFiles.Find(val).Select(f => f.Relative).ToArray();
        Assert.Equal(15, images.Length);
        for (int i = 0; i < images.Length; i++)
        {
            var fields = lines[2 + i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(images[i], fields[0]);
            Assert.Contains(fields[1], new[] { "a", "b", "c" });
            Assert.InRange(F(fields[2]), 1 / 3f - 1e-4f, 1);
            Assert.Equal(3 + 2 * 2, fields.Length);          // file, top1, prob, then the other two classes with theirs
        }
        Assert.Equal("15 images", lines[^1]);
    }

    [Fact]
    public void Every_image_format_and_letter_case_is_found_sorted_and_hidden_files_are_left_out()
    {
        Assert.True(fixtures.ExitCode == 0, fixtures.Log);
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["Z/.hidden"]);
        File.Copy(fixtures["photo.bmp"], dir["b.bmp"]);
        File.Copy(fixtures["photo.png"], dir["b.png"]);
        File.Copy(fixtures["photo.gif"], dir["Z/g.GIF"]);
        File.Copy(fixtures["rgba.png"], dir["Z/p.PNG"]);
        File.Copy(fixtures["gray.jpg"], dir["a.Jpeg"]);
        File.Copy(fixtures["exif6.jpg"], dir["Z/e.jpg"]);
        using (var bitmap = new SKBitmap(20, 30))
        {
            bitmap.Erase(new SKColor(200, 30, 90));
            using var webp = bitmap.Encode(SKEncodedImageFormat.Webp, 90);
            File.WriteAllBytes(dir["w.webp"], webp.ToArray());
        }
        File.Copy(fixtures["notimage.jpg"], dir["._b.jpg"]);           // macOS resource forks and hidden folders are skipped
        File.Copy(fixtures["notimage.jpg"], dir["Z/.hidden/x.jpg"]);
        File.WriteAllText(dir["notes.txt"], "not an image");
        string[] expected = ["Z/e.jpg", "Z/g.GIF", "Z/p.PNG", "a.Jpeg", "b.bmp", "b.png", "w.webp"];
        Assert.Equal(expected, ImageFiles.Find(dir.Path).Select(f => f.Relative));

        var result = Cli.Run("predict", "--checkpoint", trained.Cifar, "--images", dir.Path, "--out", dir["out.csv"], "--logits");
        Assert.True(result.ExitCode == 0, result.Error);
        var rows = ReadCsv(dir["out.csv"]).Skip(1).ToList();
        Assert.Equal(expected, rows.Select(r => r[0]));
        // The BMP decodes to the same pixels as the same picture saved as PNG by PIL: the same logits.
        Assert.Equal(rows[5][4..], rows[4][4..]);
        Assert.NotEqual(rows[0][4..], rows[4][4..]);
    }

    [Fact]
    public void Bad_input_is_one_line_naming_the_problem_and_exit_code_2()
    {
        Assert.True(fixtures.ExitCode == 0, fixtures.Log);
        using var dir = new TempDir();
        var images = Path.Combine(trained.Images.Path, "val");
        File.WriteAllText(dir["bad.ckpt"], "not a zip");
        Directory.CreateDirectory(dir["empty/sub"]);
        File.WriteAllText(dir["empty/sub/readme.txt"], "no images here");
        Directory.CreateDirectory(dir["broken/x"]);
        WritePng(CifarSample.LoadTest(), 0, dir["broken/a.png"]);
        File.Copy(fixtures["truncated.jpg"], dir["broken/x/t.jpg"]);

        AssertBadInput(Cli.Run("predict", "--checkpoint", dir["none.ckpt"], "--images", images), "none.ckpt", "does not exist");
        AssertBadInput(Cli.Run("predict", "--checkpoint", dir["bad.ckpt"], "--images", images), "bad.ckpt", "not a readable trainer checkpoint");
        AssertBadInput(Cli.Run("predict", "--checkpoint", trained.Folder, "--images", dir["nowhere"]), dir["nowhere"], "does not exist");
        AssertBadInput(Cli.Run("predict", "--checkpoint", trained.Folder, "--images", dir["empty"]), dir["empty"], "holds no images");
        // An undecodable image is named, through either input path (image folder loader, CIFAR resizing).
        AssertBadInput(Cli.Run("predict", "--checkpoint", trained.Folder, "--images", dir["broken"]), dir["broken/x/t.jpg"]);
        AssertBadInput(Cli.Run("predict", "--checkpoint", trained.Cifar, "--images", dir["broken"]), dir["broken/x/t.jpg"]);
        AssertBadInput(Cli.Run("predict", "--checkpoint", trained.Folder, "--images", images, "--top", "3"), "unknown option --top");
        AssertBadInput(Cli.Run("predict", "--checkpoint", trained.Folder, "--images"), "--images needs a value");
        AssertBadInput(Cli.Run("predict", "--images", images), "--checkpoint");
        AssertBadInput(Cli.Run("predict", "--checkpoint", trained.Folder), "--images");
        AssertBadInput(Cli.Run("predict", "--checkpoint", trained.Folder, "--images", images, "--batch", "0"), "--batch");
        AssertBadInput(Cli.Run("predict", "--checkpoint", trained.Folder, "--images", images, "--out", dir.Path), dir.Path, "is a folder");
    }

    [Fact]
    public void A_failed_run_leaves_an_existing_csv_untouched_and_no_temporary_file()
    {
        Assert.True(fixtures.ExitCode == 0, fixtures.Log);
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["images"]);
        WritePng(CifarSample.LoadTest(), 0, dir["images/a.png"]);
        File.Copy(fixtures["notimage.jpg"], dir["images/z.jpg"]);
        Directory.CreateDirectory(dir["out"]);
        File.WriteAllText(dir["out/p.csv"], "precious");
        foreach (var checkpoint in new[] { trained.Cifar, trained.Folder })
        {
            AssertBadInput(Cli.Run("predict", "--checkpoint", checkpoint, "--images", dir["images"], "--out", dir["out/p.csv"]), "z.jpg");
            Assert.Equal("precious", File.ReadAllText(dir["out/p.csv"]));
        }
        Assert.Equal([dir["out/p.csv"]], Directory.GetFiles(dir["out"]));
        // Once the images are good the file is replaced whole.
        File.Delete(dir["images/z.jpg"]);
        Assert.Equal(0, Cli.Run("predict", "--checkpoint", trained.Cifar, "--images", dir["images"], "--out", dir["out/p.csv"]).ExitCode);
        Assert.Equal(2, File.ReadAllLines(dir["out/p.csv"]).Length);
        Assert.Equal([dir["out/p.csv"]], Directory.GetFiles(dir["out"]));
    }

    [Fact]
    public void Class_names_with_csv_and_top5_separators_read_back_exactly()
    {
        string[] classes = ["plain", "comma,name", "semi;colon", "per%cent", "co:lon", "quote\"d"];
        float[] probabilities = [0.01f, 0.3f, 0.25f, 0.2f, 0.15f, 0.09f];
        var logits = probabilities.Select(p => MathF.Log(p)).ToArray();
        using var dir = new TempDir();
        Assert.Equal(1, PredictionCsv.Write(dir["p.csv"], classes, [new ImagePrediction("dir, with comma/x.png", logits, probabilities)], logits: true));
        var rows = ReadCsv(dir["p.csv"]);
        Assert.Equal(4 + 6, rows[0].Length);
        var row = rows[1];
        Assert.Equal(10, row.Length);
        Assert.Equal("dir, with comma/x.png", row[0]);
        Assert.Equal("comma,name", row[1]);
        Assert.Equal(0.3f, F(row[2]));
        Assert.Equal([("comma,name", 0.3f), ("semi;colon", 0.25f), ("per%cent", 0.2f), ("co:lon", 0.15f), ("quote\"d", 0.09f)], ParseTop5(row[3]));
        Assert.Equal(logits, row[4..].Select(F));                     // round-trip exact
    }
}
