using System.Diagnostics;
using System.Text.Json;
using SkiaSharp;
using Trainer.Data;
using Trainer.Data.ImageFolder;
using Trainer.Data.Loading;
using Trainer.Data.Transforms;
using Trainer.Recipes.Config;
using Trainer.Recipes.Runs;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>Image files written by PIL (tests/Trainer.Tests/image_fixtures.py) and PIL's decode of four Imagenette JPEGs.</summary>
public sealed class ImageFixtures : IDisposable
{
    readonly TempDir _dir = new();
    public string Folder => _dir.Path;
    public string[] Jpegs { get; }
    public string Log { get; }
    public int ExitCode { get; }

    public ImageFixtures()
    {
        var tench = Path.Combine(ImageFolderTests.Imagenette, "train", "n01440764");
        Jpegs = Directory.GetFiles(tench).Order(StringComparer.Ordinal).Take(4).ToArray();
        var script = Path.Combine(TestPaths.RepoRoot, "tests", "Trainer.Tests", "image_fixtures.py");
        var psi = new ProcessStartInfo("/usr/bin/python3", [script, Folder, .. Jpegs]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        Log = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        ExitCode = process.ExitCode;
    }

    public string this[string name] => Path.Combine(Folder, name);
    public void Dispose() => _dir.Dispose();
}

public class ImageFolderTests(ImageFixtures fixtures) : IClassFixture<ImageFixtures>
{
    public static string Imagenette => Path.Combine(TestPaths.SharedData, "imagenette-160");

    static readonly string[] Wnids = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"];

    /// <summary>A folder of small generated JPEGs: root/train/&lt;class&gt;/i.jpg (and val/ when asked).</summary>
    static TempDir MakeFolder(string[] classes, int perClass, bool withVal = false, string extension = ".jpg")
    {
        var dir = new TempDir();
        foreach (var split in withVal ? new[] { "train", "val" } : ["train"])
            for (int c = 0; c < classes.Length; c++)
            {
                var classDir = Path.Combine(dir.Path, split, classes[c]);
                Directory.CreateDirectory(classDir);
                for (int i = 0; i < perClass; i++)
                {
                    // A class colour with a left-to-right gradient, so crops of one image differ.
                    using var bitmap = new SKBitmap(24 + i, 20);
                    for (int y = 0; y < 20; y++)
                        for (int x = 0; x < 24 + i; x++) bitmap.SetPixel(x, y, new SKColor((byte)(c * 40), (byte)(i * 20), (byte)(x * 10 + y)));
                    using var data = bitmap.Encode(extension == ".png" ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, 95);
                    File.WriteAllBytes(Path.Combine(classDir, $"{i:D2}{extension}"), data.ToArray());
                }
            }
        return dir;
    }

    [Fact]
    public void Imagenette_has_its_counts_and_torchvisions_class_order()
    {
        var (train, val) = ImageFolderSet.Load(Imagenette, new ImageFolderOptions());
        Assert.Equal(2000, train.Count);
        Assert.Equal(500, val.Count);
        Assert.Equal(Wnids, train.Classes);
        Assert.Equal("tench", train.DisplayNames[0]);
        Assert.Equal("parachute", train.DisplayNames[9]);
        for (int k = 0; k < 10; k++)
        {
            Assert.Equal(200, train.Labels.Count(l => l == k));
            Assert.Equal(50, val.Labels.Count(l => l == k));
        }
        // Files sorted within a class, labels following the class folders.
        Assert.EndsWith(Path.Combine("n01440764", "ILSVRC2012_val_00000293.JPEG"), train.Files[0]);
        Assert.All(Enumerable.Range(0, train.Count), i => Assert.Contains(Wnids[train.Labels[i]], train.Files[i]));
    }

    [Fact]
    public void Classes_can_be_chosen_by_name_or_first_k_and_capped_per_class()
    {
        var byName = ImageFolderSet.Load(Imagenette, new ImageFolderOptions { Classes = ["parachute", "n01440764"], PerClass = 7 }).Train;
        Assert.Equal(["n01440764", "n03888257"], byName.Classes);
        Assert.Equal(14, byName.Count);
        var firstK = ImageFolderSet.Load(Imagenette, new ImageFolderOptions { FirstClasses = 3 });
        Assert.Equal(Wnids.Take(3), firstK.Train.Classes);
        Assert.Equal(150, firstK.Validation.Count);
        var e = Assert.Throws<BadInputException>(() => ImageFolderSet.Load(Imagenette, new ImageFolderOptions { Classes = ["zebra"] }));
        Assert.Contains("zebra", e.Message);
    }

    [Fact]
    public void Without_a_val_folder_a_seeded_split_holds_out_a_share_of_every_class()
    {
        using var dir = MakeFolder(["b", "a", "C"], 10, extension: ".JPG");
        var (train, val) = ImageFolderSet.Load(dir.Path, new ImageFolderOptions { ValFraction = 0.2, Seed = 5 });
        Assert.Equal(["C", "a", "b"], train.Classes);     // code-point order, as Python sorts
        Assert.Equal(24, train.Count);
        Assert.Equal(6, val.Count);
        Assert.All(Enumerable.Range(0, 3), k => Assert.Equal(2, val.Labels.Count(l => l == k)));
        Assert.Empty(train.Files.Intersect(val.Files));
        var again = ImageFolderSet.Load(dir.Path, new ImageFolderOptions { ValFraction = 0.2, Seed = 5 }).Validation;
        var other = ImageFolderSet.Load(dir.Path, new ImageFolderOptions { ValFraction = 0.2, Seed = 6 }).Validation;
        Assert.Equal(val.Files, again.Files);
        Assert.NotEqual(val.Files, other.Files);
        // Class folders straight under the root work too (a user's own photos).
        var flat = ImageFolderSet.Load(Path.Combine(dir.Path, "train"), new ImageFolderOptions { ValFraction = 0.2 });
        Assert.Equal(30, flat.Train.Count + flat.Validation.Count);
    }

    [Fact]
    public void Batches_do_not_depend_on_the_number_of_workers()
    {
        var config = new DataConfig { Name = "imagefolder", Root = Imagenette, PerClass = 6, ImageSize = 64, ResizeSize = 73, ColorJitter = 0.4, Lighting = 0.1 };
        var data = DataSources.Load(config, seed: 3);
        float[] Epoch(int workers)
        {
            var run = new RunConfig { Data = config with { Workers = workers }, Train = new TrainConfig { BatchSize = 16 }, Seed = 3 };
            var loader = DataSources.TrainLoader(run, data.Train, Normalization.ImageNet);
            var values = new List<float>();
            foreach (var batch in loader.Epoch(1))
                using (batch) values.AddRange(batch.Images.contiguous().data<float>().ToArray());
            return values.ToArray();
        }
        var one = Epoch(1);
        Assert.Equal(60 * 3 * 64 * 64, one.Length);
        Assert.Equal(one, Epoch(2));
        Assert.Equal(one, Epoch(3));
    }

    [Fact]
    public void Random_resized_crops_respect_the_scale_and_ratio_ranges()
    {
        var t = new ImageTransform { Train = true, Size = 224 };
        int fallbacks = 0;
        for (ulong s = 0; s < 500; s++)
        {
            var rng = new Rng(s);
            var p = t.RandomResizedCrop(300, 200, ref rng);
            Assert.True(p.X >= 0 && p.Y >= 0 && p.X + p.Width <= 300 && p.Y + p.Height <= 200, $"crop {p} leaves the image");
            Assert.Equal(Math.Round(p.X), p.X);
            double area = p.Width * p.Height / (300.0 * 200), ratio = p.Width / p.Height;
            if (p.Width == 266 && p.Height == 200) { fallbacks++; continue; }   // the center fallback clamps 3:2 to 4:3
            Assert.InRange(area, 0.08 - 0.01, 1.0);
            Assert.InRange(ratio, 0.75 * 0.97, 4.0 / 3 * 1.03);                // rounding to whole pixels
        }
        Assert.True(fallbacks < 50);
    }

    [Fact]
    public void Scale_augmentation_crops_224_from_a_shorter_side_between_256_and_480()
    {
        var t = new ImageTransform { Train = true, Size = 224, Crop = TrainCrop.Scale };
        var sides = new List<double>();
        for (ulong s = 0; s < 300; s++)
        {
            var rng = new Rng(s);
            var p = t.ScaleCrop(500, 375, ref rng);
            double shortSide = 224 * 375 / p.Height;                // the resized image's shorter side
            Assert.InRange(shortSide, 255.5, 480.5);
            Assert.InRange(p.Width / p.Height, 0.99, 1.01);          // per-axis integer resize, as torchvision
            Assert.True(p.X >= 0 && p.Y >= 0 && p.X + p.Width <= 500.01 && p.Y + p.Height <= 375.01);
            sides.Add(shortSide);
        }
        Assert.True(sides.Min() < 280 && sides.Max() > 450, "the shorter side does not cover [256, 480]");
    }

    [Fact]
    public void Evaluation_resizes_the_shorter_side_then_center_crops_and_ten_crop_follows_torchvision()
    {
        var t = new ImageTransform { Size = 224, ResizeSize = 256 };
        Assert.Equal((341, 256), ImageTransform.Resized(400, 300, 256));   // torchvision: int(256 * 400 / 300)
        var center = t.CenterCrop(400, 300);
        double sx = 341 / 400.0, sy = 256 / 300.0;
        Assert.Equal(58 / sx, center.X, 3);                               // round((341 - 224) / 2) = 58
        Assert.Equal(16 / sy, center.Y, 3);
        Assert.Equal(224 / sx, center.Width, 3);
        var ten = t.TenCrops(400, 300);
        Assert.Equal(10, ten.Length);
        float[] lefts = [0, 117, 0, 117, 58];
        float[] tops = [0, 0, 32, 32, 16];
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(lefts[i] / sx, ten[i].X, 3);
            Assert.Equal(tops[i] / sy, ten[i].Y, 3);
            Assert.False(ten[i].Flip);
            Assert.True(ten[5 + i].Flip);
        }
        // The mirrored image's top-left crop is the mirror of the original's top-right region.
        Assert.Equal(ten[1].X, ten[5].X);
        Assert.Equal(ten[0].X, ten[6].X);
    }

    [Fact]
    public void Rendering_resamples_the_planned_region_and_a_flip_mirrors_it()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(40, 20, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 40; x++) bitmap.SetPixel(x, y, new SKColor((byte)(x * 6), (byte)(y * 12), 0));
        using var image = SKImage.FromBitmap(bitmap);
        var t = new ImageTransform { Size = 10 };
        var plain = new byte[10 * 10 * 4];
        var mirrored = new byte[10 * 10 * 4];
        t.Render(image, new CropPlan(20, 5, 10, 10, false), plain);
        t.Render(image, new CropPlan(20, 5, 10, 10, true), mirrored);
        for (int y = 0; y < 10; y++)
            for (int x = 0; x < 10; x++)
            {
                Assert.Equal((20 + x) * 6, plain[(y * 10 + x) * 4]);          // a 1:1 crop copies pixels
                Assert.Equal((5 + y) * 12, plain[(y * 10 + x) * 4 + 1]);
                Assert.Equal(plain[(y * 10 + x) * 4], mirrored[(y * 10 + 9 - x) * 4]);
            }
    }

    [Fact]
    public void Decoding_matches_pil_within_one_level()
    {
        Assert.True(fixtures.ExitCode == 0, $"PIL fixtures failed (is python3-pil installed?): {fixtures.Log}");
        for (int i = 0; i < fixtures.Jpegs.Length; i++)
        {
            var size = File.ReadAllText(fixtures[$"decoded_{i}.size"]).Split(' ').Select(int.Parse).ToArray();
            var pil = File.ReadAllBytes(fixtures[$"decoded_{i}.rgb"]);
            using var image = ImageDecoder.Decode(fixtures.Jpegs[i]);
            Assert.Equal(size, new[] { image.Width, image.Height });
            var ours = Rgb(image);
            double mad = ours.Zip(pil, (a, b) => Math.Abs(a - b)).Average();
            Assert.True(mad <= 1.0, $"{fixtures.Jpegs[i]}: mean absolute difference {mad:F3} levels from PIL");
        }
    }

    static byte[] Rgb(SKImage image)
    {
        using var bitmap = SKBitmap.FromImage(image);
        var rgb = new byte[image.Width * image.Height * 3];
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                int k = (y * image.Width + x) * 3;
                (rgb[k], rgb[k + 1], rgb[k + 2]) = (c.Red, c.Green, c.Blue);
            }
        return rgb;
    }

    [Fact]
    public void Grayscale_cmyk_and_alpha_become_rgb_and_exif_orientation_is_applied()
    {
        Assert.True(fixtures.ExitCode == 0, fixtures.Log);
        using (var gray = ImageDecoder.Decode(fixtures["gray.jpg"]))
            Assert.All(Rgb(gray), v => Assert.InRange(v, 126, 130));
        using (var cmyk = ImageDecoder.Decode(fixtures["cmyk.jpg"]))
        {
            var rgb = Rgb(cmyk);
            Assert.True(rgb[0] > 200 && rgb[1] < 60 && rgb[2] < 60, $"CMYK red decoded as {rgb[0]},{rgb[1]},{rgb[2]}");
        }
        using (var rgba = ImageDecoder.Decode(fixtures["rgba.png"]))
        {
            // PIL's convert("RGB") keeps the colour whatever the alpha, even where alpha is 0.
            var rgb = Rgb(rgba);
            for (int k = 0; k < rgb.Length; k += 3) Assert.Equal(new byte[] { 10, 200, 30 }, rgb[k..(k + 3)]);
        }
        using var rotated = ImageDecoder.Decode(fixtures["exif6.jpg"]);
        Assert.Equal((40, 60), (rotated.Width, rotated.Height));              // stored 60x40, shown turned
        Assert.Equal((40, 60), ImageDecoder.ReadSize(fixtures["exif6.jpg"]));
        var pixels = Rgb(rotated);
        int topRight = (0 * 40 + 37) * 3;                                    // the stored top-left goes to the top-right
        Assert.True(pixels[topRight] > 200 && pixels[topRight + 2] < 60, "EXIF orientation 6 was not applied");
        Assert.True(pixels[2] > 200, "the stored top-left should no longer be at the top-left");
    }

    [Fact]
    public void Broken_files_are_bad_input_naming_the_file_or_skipped_on_request()
    {
        Assert.True(fixtures.ExitCode == 0, fixtures.Log);
        foreach (var name in new[] { "truncated.jpg", "notimage.jpg" })
        {
            var e = Assert.Throws<BadInputException>(() => ImageDecoder.Decode(fixtures[name]));
            Assert.Contains(name, e.Message);
        }
        using var dir = MakeFolder(["a", "b"], 4, withVal: true);
        File.Copy(fixtures["truncated.jpg"], Path.Combine(dir.Path, "train", "a", "99.jpg"));
        File.Copy(fixtures["notimage.jpg"], Path.Combine(dir.Path, "train", "b", "98.jpg"));
        var strict = new DataConfig { Name = "imagefolder", Root = dir.Path, ImageSize = 16, ResizeSize = 18 };
        var data = DataSources.Load(strict, seed: 0);
        var loader = DataSources.TrainLoader(new RunConfig { Data = strict, Train = new TrainConfig { BatchSize = 4 } }, data.Train, Normalization.ImageNet);
        var error = Assert.Throws<BadInputException>(() => { foreach (var b in loader.Epoch(0)) b.Dispose(); });
        Assert.Contains(dir.Path, error.Message);
        var lenient = DataSources.Load(strict with { SkipBadImages = true }, seed: 0);
        Assert.Equal(2, lenient.SkippedImages);
        Assert.Equal(8, lenient.Train.Count);
    }

    [Fact]
    public void A_bad_image_folder_is_one_line_and_exit_code_2()
    {
        using var dir = MakeFolder(["a", "b"], 3, withVal: true);
        Directory.Delete(Path.Combine(dir.Path, "val", "b"), recursive: true);
        Directory.CreateDirectory(Path.Combine(dir.Path, "train", "c"));
        using var out1 = new TempDir();
        string[] Train(string root) => ["train", "--set", "data.name=imagefolder", "--set", $"data.root={root}", "--set", "model=resnet18", "--out", Path.Combine(out1.Path, Guid.NewGuid().ToString())];

        var empty = Cli.Run(Train(dir.Path));
        Assert.Equal(2, empty.ExitCode);
        Assert.Single(empty.ErrorLines);
        Assert.Contains(Path.Combine("train", "c"), empty.Error);               // the empty class folder
        Directory.Delete(Path.Combine(dir.Path, "train", "c"));

        var missingClass = Cli.Run(Train(dir.Path));
        Assert.Equal(2, missingClass.ExitCode);
        Assert.Contains("'b'", missingClass.Error);
        Assert.Contains("val", missingClass.Error);

        var missingRoot = Cli.Run(Train(Path.Combine(dir.Path, "nowhere")));
        Assert.Equal(2, missingRoot.ExitCode);
        Assert.Single(missingRoot.ErrorLines);
        Assert.Contains("nowhere", missingRoot.Error);

        // A root with neither a train split nor class folders.
        var bare = Directory.CreateDirectory(Path.Combine(out1.Path, "bare")).FullName;
        var noSplit = Cli.Run(Train(bare));
        Assert.Equal(2, noSplit.ExitCode);
        Assert.Single(noSplit.ErrorLines);
        Assert.Contains("holds no class folders", noSplit.Error);
    }

    [Fact]
    public void A_broken_image_stops_a_run_with_exit_code_2_naming_it_unless_skipping_is_asked_for()
    {
        Assert.True(fixtures.ExitCode == 0, fixtures.Log);
        using var dir = MakeFolder(["a", "b"], 4, withVal: true);
        var broken = Path.Combine(dir.Path, "train", "b", "07.jpg");
        File.Copy(fixtures["truncated.jpg"], broken);
        using var runs = new TempDir();
        string[] Train(string name, params string[] extra) => ["train", "--out", Path.Combine(runs.Path, name), "--set", "model=resnet20", "--set", "data.name=imagefolder",
            "--set", $"data.root={dir.Path}", "--set", "data.image_size=32", "--set", "data.resize_size=36", "--set", "train.epochs=1",
            "--set", "train.batch_size=3", "--set", "log.progress=false", .. extra];
        var strict = Cli.Run(Train("strict"));
        Assert.Equal(2, strict.ExitCode);
        Assert.Single(strict.ErrorLines);
        Assert.Contains(broken, strict.Error);
        var lenient = Cli.Run(Train("lenient", "--set", "data.skip_bad_images=true"));
        Assert.True(lenient.ExitCode == 0, lenient.Error);
        Assert.Contains("1 unreadable image(s) were left out", lenient.Output);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runs.Path, "lenient", "summary.json")));
        Assert.Equal(1, summary.RootElement.GetProperty("skipped_images").GetInt32());
    }

    [Fact]
    public void Ten_crop_evaluation_averages_the_logits_of_the_ten_views()
    {
        var config = new DataConfig { Name = "imagefolder", Root = Imagenette, PerClass = 2, ImageSize = 32, ResizeSize = 40, TenCrop = true };
        var data = DataSources.Load(config, seed: 0);
        // The batch size counts images through the network: 40 = 4 samples x 10 views.
        var loader = DataSources.EvalLoader(config, data.Validation, Normalization.ImageNet, 40);
        using var batch = loader.Epoch(0).First();
        Assert.Equal([4L, 10, 3, 32, 32], batch.Images.shape);
        using var model = Trainer.Models.ModelRegistry.Create("resnet20", new Trainer.Models.ModelOptions(NumClasses: 10));
        model.eval();
        using var _ = no_grad();
        using var averaged = Trainer.Recipes.Engine.Evaluator.Logits(model, batch.Images);
        using var byHand = stack(Enumerable.Range(0, 10).Select(v => model.call(batch.Images[.., v])).ToArray(), 1).mean([1]);
        Assert.True(averaged.allclose(byHand, rtol: 1e-4, atol: 1e-5));
        // Views 5-9 mirror views 0-4 of the other corner order: view 9 (mirrored center) mirrors view 4.
        Assert.True(batch.Images[0, 9].allclose(batch.Images[0, 4].flip(2), atol: 1e-5));
    }

    [Fact]
    public void Inspect_and_bench_report_the_folder_as_json()
    {
        var inspect = Cli.Run("data", "inspect", Imagenette, "--json");
        Assert.Equal(0, inspect.ExitCode);
        using var doc = JsonDocument.Parse(inspect.Output);
        var splits = doc.RootElement.GetProperty("splits");
        Assert.Equal(2000, splits[0].GetProperty("images").GetInt32());
        Assert.Equal(500, splits[1].GetProperty("images").GetInt32());
        Assert.Equal(200, splits[0].GetProperty("counts").GetProperty("n03888257").GetInt32());
        Assert.Equal(160, splits[0].GetProperty("width").GetProperty("max").GetInt32());
        Assert.Equal("tench", doc.RootElement.GetProperty("classes")[0].GetProperty("display_name").GetString());

        using var small = MakeFolder(["a", "b"], 20, withVal: true);
        var bench = Cli.Run("bench", "--data", small.Path, "--input", "3x32x32", "--workers", "2", "--batch", "8", "--json");
        Assert.Equal(0, bench.ExitCode);
        using var b = JsonDocument.Parse(bench.Output);
        Assert.Equal(2, b.RootElement.GetProperty("workers").GetInt32());
        Assert.Equal(40, b.RootElement.GetProperty("images").GetInt32());
        Assert.True(b.RootElement.GetProperty("images_per_s").GetDouble() > 0);
        Assert.Equal(small.Path, b.RootElement.GetProperty("data").GetString());
    }

    [Fact]
    public void Cached_images_give_the_same_batches_and_drop_last_drops_the_short_batch()
    {
        using var cache = new TempDir();
        var config = new DataConfig { Name = "imagefolder", Root = Imagenette, PerClass = 5, ImageSize = 48, ResizeSize = 55 };
        var data = DataSources.Load(config, seed: 1);
        float[] Epoch(DataConfig c, int epoch, out int batches)
        {
            var loader = DataSources.TrainLoader(new RunConfig { Data = c, Train = new TrainConfig { BatchSize = 16 }, Seed = 1 }, data.Train, Normalization.ImageNet);
            var values = new List<float>();
            batches = 0;
            foreach (var batch in loader.Epoch(epoch))
                using (batch) { values.AddRange(batch.Images.contiguous().data<float>().ToArray()); batches++; }
            return values.ToArray();
        }
        var plain = Epoch(config, 2, out int all);
        Assert.Equal(4, all);                                                  // 50 images: 16, 16, 16, 2
        var disk = config with { Cache = DecodeCache.Disk, CacheDir = cache.Path };
        Epoch(disk, 1, out _);                                                 // fills the cache
        Assert.Equal(50, Directory.GetFiles(cache.Path, "*.rgba").Length);
        Assert.Equal(plain, Epoch(disk, 2, out _));                            // read back from the cache
        Assert.Equal(plain, Epoch(config with { Cache = DecodeCache.Memory }, 2, out _));
        Epoch(config with { DropLast = true }, 2, out int dropped);
        Assert.Equal(3, dropped);
    }

    [Fact]
    public void An_image_folder_run_trains_and_its_checkpoint_evaluates_on_the_validation_split()
    {
        using var dir = MakeFolder(["a", "b", "c"], 6, withVal: true);
        using var runs = new TempDir();
        var run = Path.Combine(runs.Path, "r");
        var train = Cli.Run("train", "--out", run, "--set", "model=resnet20", "--set", "data.name=imagefolder", "--set", $"data.root={dir.Path}",
            "--set", "data.image_size=32", "--set", "data.resize_size=36", "--set", "train.epochs=1", "--set", "train.batch_size=6",
            "--set", "log.progress=false", "--set", "log.histograms=false");
        Assert.True(train.ExitCode == 0, train.Error);
        Assert.Contains("18 training / 18 validation images", train.Output);
        var eval = Cli.Run("eval", "--checkpoint", Path.Combine(run, "checkpoints", "last.ckpt"), "--json");
        Assert.True(eval.ExitCode == 0, eval.Error);
        using var result = JsonDocument.Parse(eval.Output);
        Assert.Equal(18, result.RootElement.GetProperty("samples").GetInt64());
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        // The same model on the same split through the same evaluation transform as the run's last validation.
        Assert.Equal(summary.RootElement.GetProperty("final").GetProperty("val_top1").GetDouble(), result.RootElement.GetProperty("top1").GetDouble(), 6);
        // The 10-crop test sees other views of the same images: other logits, the same samples.
        var tenCrop = Cli.Run("eval", "--checkpoint", Path.Combine(run, "checkpoints", "last.ckpt"), "--ten-crop", "--json");
        Assert.True(tenCrop.ExitCode == 0, tenCrop.Error);
        using var tenResult = JsonDocument.Parse(tenCrop.Output);
        Assert.Equal(18, tenResult.RootElement.GetProperty("samples").GetInt64());
        Assert.NotEqual(result.RootElement.GetProperty("loss").GetDouble(), tenResult.RootElement.GetProperty("loss").GetDouble());
    }
}
