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

/// <summary>The image-folder pipeline past reading: transforms, the loader, caches, runs, evaluation and the CLI verbs.</summary>
public class ImagePipelineTests(ImageFixtures fixtures) : IClassFixture<ImageFixtures>
{
    static string Imagenette => ImageFolderTests.Imagenette;

    static TempDir MakeFolder(string[] classes, int perClass, bool withVal = false, string extension = ".jpg") =>
        ImageFolderTests.MakeFolder(classes, perClass, withVal, extension);

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

    [Theory]
    [InlineData("imagefolder")]   // interleaved RGBA, colour jitter and PCA lighting
    [InlineData("cifar10")]       // channel-planar bytes
    public void Batches_sent_as_bytes_and_finished_where_they_arrive_equal_the_loaders_own(string kind)
    {
        // What a GPU run does (uint8 over the bus, finished on the device), done on the CPU here:
        // the same images, colours and normalisation, value for value.
        var config = kind == "imagefolder"
            ? new DataConfig { Name = "imagefolder", Root = Imagenette, PerClass = 4, ImageSize = 48, ResizeSize = 55, ColorJitter = 0.4, Lighting = 0.1, Workers = 1 }
            : new DataConfig { Name = "cifar10", Root = TestPaths.SharedCifar10, Subset = 40, Workers = 1 };
        var data = DataSources.Load(config, seed: 3);
        var run = new RunConfig { Data = config, Train = new TrainConfig { BatchSize = 16 }, Seed = 3 };
        var normalization = DataSources.Normalization(config, data.Train);
        var finished = DataSources.TrainLoader(run, data.Train, normalization);
        var source = finished.Source;
        var asBytes = new BatchLoader(source, 16, shuffle: true, seed: 3, workers: 1, finishOnDevice: true);
        var order = finished.Order(1);
        for (int b = 0; b < 2; b++)
        {
            using var expected = finished.MakeBatch(1, b, order);
            using var sent = asBytes.MakeBatch(1, b, order);
            Assert.False(expected.Unfinished);
            Assert.True(sent.Unfinished);
            using var images = sent.ImagesOn(CPU);
            Assert.Equal(ScalarType.Float32, images.dtype);
            Assert.Equal(expected.Images.shape, images.shape);
            Assert.Equal(expected.Images.contiguous().data<float>().ToArray(), images.contiguous().data<float>().ToArray());
            Assert.Equal(expected.Labels.data<long>().ToArray(), sent.Labels.data<long>().ToArray());
        }
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
