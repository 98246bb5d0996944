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
    internal static TempDir MakeFolder(string[] classes, int perClass, bool withVal = false, string extension = ".jpg")
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
}
