using SkiaSharp;
using Trainer.Data;
using Trainer.Data.ImageFolder;
using Trainer.Data.Transforms;
using Trainer.Models;
using Trainer.Recipes.Weights.Onnx;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>
/// ML.NET's pretrained ResNet-18 (restored into the NuGet cache by the build) imported once, four
/// Imagenette validation images rendered at 224x224, and the independent reference
/// (onnx_reference.py: python3-onnx reads the initializers, a node-by-node torch interpreter runs
/// the preprocessing and the model, and writes three corrupted variants).
/// </summary>
public sealed class OnnxImportFixture : IDisposable
{
    public const int Images = 4, Size = 224;
    readonly TempDir _dir = new();
    public string this[string name] => _dir[name];
    public string ModelPath { get; } = PretrainedPackages.MlNetResNet18.Require();
    public string PreprocessPath { get; }
    internal ImportedResNet Imported { get; }
    /// <summary>(Images, 3, Size, Size) RGB pixels 0-255 as floats.</summary>
    public Tensor Pixels { get; }
    public string Reference { get; }

    public OnnxImportFixture()
    {
        PreprocessPath = OnnxPreprocessing.Locate(ModelPath) ?? throw new InvalidOperationException("the package's ResNetPreprocess.onnx is missing");
        var pixels = RenderImages();
        File.WriteAllBytes(_dir["pixels.bin"], pixels);
        using (var bytes = tensor(pixels, [Images, 3, Size, Size])) Pixels = bytes.to(ScalarType.Float32);
        Reference = Python.Run("onnx_reference.py", _dir.Path, ModelPath, PreprocessPath, _dir["pixels.bin"], Images.ToString(), Size.ToString());
        Imported = OnnxResNetImporter.Read(ModelPath);
    }

    /// <summary>The first image of the first four Imagenette classes: shorter side resized to 224, centre 224x224 crop, planar RGB.</summary>
    static byte[] RenderImages()
    {
        var root = Path.Combine(TestPaths.SharedData, "imagenette-160", "val");
        var files = Directory.GetDirectories(root).Order(StringComparer.Ordinal).Take(Images)
            .Select(d => Directory.GetFiles(d).Order(StringComparer.Ordinal).First()).ToArray();
        var transform = new ImageTransform { Size = Size, ResizeSize = Size };
        var planar = new byte[Images * 3 * Size * Size];
        var rgba = new byte[Size * Size * 4];
        for (int i = 0; i < Images; i++)
        {
            using var image = ImageDecoder.Decode(files[i]);
            transform.Render(image, transform.CenterCrop(image.Width, image.Height), rgba);
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < Size * Size; p++) planar[(i * 3 + c) * Size * Size + p] = rgba[p * 4 + c];
        }
        return planar;
    }

    public float[] ReadFloats(string name)
    {
        var bytes = File.ReadAllBytes(this[name]);
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    public void Dispose()
    {
        Imported.Dispose();
        Pixels.Dispose();
        _dir.Dispose();
    }
}

public class OnnxImportTests(OnnxImportFixture fixture, ITestOutputHelper output) : IClassFixture<OnnxImportFixture>
{
    [Fact]
    public void The_graph_walk_finds_four_stages_of_basic_blocks_and_the_bgr_mean_preprocessing()
    {
        using var scope = NewDisposeScope();
        var imported = fixture.Imported;
        Assert.Equal([2, 2, 2, 3], imported.BlocksPerStage);
        Assert.Equal("mlnet_resnet18", imported.ModelName);
        var n = imported.Normalization!;
        Assert.Equal(NormalizationMode.Channel, n.Mode);
        Assert.True(n.Bgr);
        Assert.Equal(255f, n.Scale);
        Assert.Equal([1f, 1f, 1f], n.Std);
        // The mean image averaged per channel, in BGR order (a Caffe-like 103.1 / 115.9 / 123.2).
        using var prep = OnnxModel.Read(fixture.PreprocessPath);
        var expected = prep.Graph.Initializers["MeanImage"].reshape(3, -1).to(ScalarType.Float64).mean([1]);
        for (int c = 0; c < 3; c++) Assert.Equal(expected[c].item<double>(), n.Mean[c], 1e-4);
        Assert.InRange(n.Mean[0], 102, 104);
        Assert.InRange(n.Mean[2], 122, 124);
        output.WriteLine(imported.Description);
        Assert.Contains("2-2-2-3", imported.Description);
        Assert.Contains("CNTK", imported.Description);
    }

    [Fact]
    public void Every_mapped_tensor_is_bit_identical_to_the_initializer_that_python_onnx_reads()
    {
        var blob = File.ReadAllBytes(fixture["initializers.bin"]);
        var index = File.ReadAllLines(fixture["initializers.txt"]).Select(l => l.Split(' '))
            .ToDictionary(f => f[0], f => (Offset: int.Parse(f[1]), Shape: f[2..].Select(long.Parse).ToArray()));
        var imported = fixture.Imported;
        // Every initializer is used exactly once: 22 convs and 22 batch norms of four tensors each.
        Assert.Equal(110, index.Count);
        Assert.Equal(index.Keys.Order(), imported.Sources.Values.Order());
        foreach (var (key, source) in imported.Sources)
        {
            var (offset, shape) = index[source];
            var t = imported.StateDict[key];
            Assert.Equal(ScalarType.Float32, t.dtype);
            Assert.True(shape.SequenceEqual(t.shape), $"{key} <- {source}: shape [{string.Join(", ", t.shape)}], python reads [{string.Join(", ", shape)}]");
            var bytes = t.bytes.ToArray();
            Assert.True(blob.AsSpan(offset, bytes.Length).SequenceEqual(bytes), $"{key} differs from initializer {source}");
        }

        // Exactly the keys, in the order, of the registered model's state_dict, fc aside.
        using var model = ModelRegistry.Create("mlnet_resnet18");
        Assert.Equal(StateDictOrder.Keys(model).Where(k => !k.StartsWith("fc.")), imported.StateDict.Keys);
        foreach (var (key, t) in imported.StateDict.Where(e => e.Key.EndsWith("num_batches_tracked")))
        {
            Assert.Equal(ScalarType.Int64, t.dtype);
            Assert.Equal(0, t.dim());
            Assert.Equal(0L, t.item<long>());
        }
    }

    [Fact]
    public void The_mapped_model_computes_the_features_of_an_independent_interpreter_of_the_onnx_graph()
    {
        Assert.StartsWith("features (4, 512)", fixture.Reference);
        using var scope = NewDisposeScope();
        using var model = ModelRegistry.Create("mlnet_resnet18");
        var (missing, unexpected) = model.load_state_dict(fixture.Imported.StateDict, strict: true, skip: ["fc.weight", "fc.bias"]);
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        model.eval();
        using var _ = no_grad();

        // Exactly the package's preprocessing: BGR, 0-255, minus the mean image.
        using var prep = OnnxModel.Read(fixture.PreprocessPath);
        var input = fixture.Pixels.flip(1) - prep.Graph.Initializers["MeanImage"];
        var expected = tensor(fixture.ReadFloats("features.bin"), [OnnxImportFixture.Images, 512]);
        var actual = model.ForwardFeatures(input);
        double scale = expected.abs().max().item<float>();
        double error = (actual - expected).abs().max().item<float>();
        output.WriteLine($"features: max |difference| {error:G3} at max |feature| {scale:G4} (relative {error / scale:G3})");
        Assert.True(error <= 1e-4 * scale, $"features differ by {error:G3} at scale {scale:G3}");
        // Different images give clearly different features (a broken path would not).
        double spread = (expected[0] - expected[1]).abs().max().item<float>();
        Assert.True(spread > 0.1 * scale, $"the reference features hardly depend on the image ({spread:G3} vs {scale:G3})");

        // The importer's per-channel mean in place of the mean image: the same features, nearly.
        var channelInput = fixture.Imported.Normalization!.Apply(fixture.Pixels / 255, channelDim: 1);
        var approximate = model.ForwardFeatures(channelInput);
        double channelError = (approximate - expected).abs().max().item<float>();
        double cosine = nn.functional.cosine_similarity(approximate, expected, dim: 1).min().item<float>();
        output.WriteLine($"per-channel mean instead of the mean image: max |difference| {channelError:G3} (relative {channelError / scale:G3}), lowest cosine similarity {cosine:F5}");
        Assert.True(cosine > 0.99, $"the per-channel mean changes the features too much (cosine {cosine:F5})");
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("text")]
    [InlineData("jpeg")]
    public void A_file_that_is_not_a_readable_onnx_model_is_bad_input_naming_it(string kind)
    {
        using var dir = new TempDir();
        var path = dir["model.onnx"];
        switch (kind)
        {
            case "truncated":
                var bytes = File.ReadAllBytes(fixture.ModelPath);
                File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
                break;
            case "text":
                File.WriteAllText(path, "name,value\nlr,0.1\n");
                break;
            default:
                var jpeg = Directory.GetFiles(Path.Combine(TestPaths.SharedData, "imagenette-160", "val"), "*.JPEG", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
                File.Copy(jpeg, path);
                break;
        }
        var e = Assert.Throws<BadInputException>(() => OnnxResNetImporter.Read(path));
        output.WriteLine(e.Message);
        Assert.Contains(path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Corrupt_bytes_anywhere_give_a_valid_read_or_one_line_of_bad_input_never_another_failure()
    {
        // The small preprocessing file has every part the reader knows: nodes, attributes, a float initializer, shapes.
        var original = File.ReadAllBytes(fixture.PreprocessPath);
        using var dir = new TempDir();
        var path = dir["corrupt.onnx"];
        var rng = new Random(7);
        int read = 0, refused = 0;
        for (int i = 0; i < 400; i++)
        {
            var bytes = i % 4 == 0 ? original[..rng.Next(original.Length)] : (byte[])original.Clone();
            // Mostly within the graph's structure (the first 400 bytes), sometimes anywhere.
            if (i % 4 != 0)
                for (int k = rng.Next(1, 5); k > 0; k--) bytes[rng.Next(i % 2 == 0 ? 400 : bytes.Length)] = (byte)rng.Next(256);
            File.WriteAllBytes(path, bytes);
            try
            {
                OnnxPreprocessing.Read(path);
                read++;
            }
            catch (BadInputException e)
            {
                refused++;
                Assert.Contains(path, e.Message);
                Assert.DoesNotContain(e.Message, char.IsControl);
            }
        }
        output.WriteLine($"{read} corrupt copies still read, {refused} refused");
        Assert.True(refused > 100, $"only {refused} of 400 corrupt copies were refused");
    }

    [Theory]
    [InlineData("grouped", "grouped convolution (group 2)")]
    [InlineData("epsilon", "epsilon 0.001")]
    [InlineData("padding", "pads [2, 2, 2, 2]")]
    public void A_graph_outside_the_basic_block_pattern_is_bad_input_saying_why(string variant, string reason)
    {
        var path = fixture[variant + ".onnx"];
        var e = Assert.Throws<BadInputException>(() => OnnxResNetImporter.Read(path));
        output.WriteLine(e.Message);
        Assert.Contains(path, e.Message);
        Assert.Contains(reason, e.Message);
    }
}
