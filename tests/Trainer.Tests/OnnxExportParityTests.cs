using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp.Modules;
using Trainer.Data;
using Trainer.Data.ImageFolder;
using Trainer.Data.Transforms;
using Trainer.Models;
using Trainer.Models.Onnx;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Runs;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Trainer.Tests;

/// <summary>
/// Every model family written as ONNX and run by ONNX Runtime gives TorchSharp's evaluation-mode
/// logits on real images (Imagenette validation photos at the model's native size), in a file
/// Debian's onnx checker accepts. BatchNorm statistics are measured on those images and its
/// affine parameters randomised first, so a wrong BatchNorm would show. The
/// suite runs a representative set (every family and every block kind once);
/// TRAINER_ONNX_SWEEP=all runs the whole registry (README: "ONNX export").
/// </summary>
public sealed class OnnxExportParityTests(ITestOutputHelper output)
{
    /// <summary>Every family and every block kind: option-A and projection shortcuts, SE, pre-activation, grouped, dense, inverted residuals, shuffle units, MBConv, the Inception modules, VGG/AlexNet's adaptive pool, LeNet's tanh and average pools.</summary>
    public static readonly string[] Representative =
    [
        "resnet20", "plain20", "se_resnet20", "resnet18", "resnet50", "preact_resnet18", "preact_resnet164", "resnext29_8x64d",
        "densenet121", "densenet40_12", "mobilenet_v1", "mobilenet_v2_cifar", "mnasnet1_0", "shufflenet_v2_x0_5", "efficientnet_b0",
        "googlenet", "inception_v3", "inception_v4", "inception_resnet_v2", "alexnet", "vgg11_bn", "vgg11_cifar", "lenet5",
    ];

    public static IEnumerable<object[]> Models() =>
        (Environment.GetEnvironmentVariable("TRAINER_ONNX_SWEEP") == "all" ? ModelRegistry.All.Select(e => e.Name) : Representative)
        .Select(name => new object[] { name });

    /// <summary>...and Debian's onnx checker (full_check: shape inference included) accepts the file.</summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void Onnx_runtime_logits_equal_torchsharp_evaluation_logits(string name)
    {
        manual_seed(7);   // the same weights every run
        var entry = ModelRegistry.Get(name);
        using var model = entry.Create();
        var proto = Compare(model, name, entry.NativeInput, foldBatchNorm: false);
        using var dir = new TempDir();
        var report = Python.Run("onnx_check.py", WithExternalWeights(proto, dir));
        output.WriteLine($"onnx checker: {report.Split('\n')[0]}");
        Assert.Contains("checked 1", report);
    }

    /// <summary>Folding removes every BatchNorm that follows a convolution read by nothing else; DenseNet's pre-activation BatchNorms read concatenations or the stem's output (also read by the concatenation), so they stay.</summary>
    [Theory]
    [InlineData("resnet20", 0)]
    [InlineData("mobilenet_v2", 0)]
    [InlineData("densenet40_12", 39)]   // 36 layers + 2 transitions + the final norm, none after a convolution alone
    public void Folded_batchnorm_gives_the_same_logits(string name, int batchNormsLeft)
    {
        manual_seed(7);   // the same weights every run
        var entry = ModelRegistry.Get(name);
        using var model = entry.Create();
        var proto = Compare(model, name, entry.NativeInput, foldBatchNorm: true);
        Assert.Equal(batchNormsLeft, proto.Graph.Node.Count(n => n.OpType == "BatchNormalization"));
    }

    [Fact]
    public void A_fine_tuned_mlp_head_is_part_of_the_graph()
    {
        manual_seed(7);
        using var model = ModelRegistry.Create("resnet20");
        model.ResetMlpHead(numClasses: 7, hidden: 32, dropout: 0.5);
        var proto = Compare(model, "resnet20+mlp", [3, 32, 32], foldBatchNorm: false);
        Assert.Contains(proto.Graph.Initializer, t => t.Name == "head_hidden.0.weight");
        Assert.Equal(7, proto.Graph.Output[0].Type.TensorType.Shape.Dim[1].DimValue);
    }

    /// <summary>VGG's 7x7 adaptive pool on a 3x3 map (a 96x96 input) has no exact ONNX form: refused, naming both sizes (`trainer export` turns it into one line).</summary>
    [Fact]
    public void An_adaptive_pool_onnx_cannot_express_is_refused_naming_the_sizes()
    {
        using var model = ModelRegistry.Create("vgg11");
        var e = Assert.Throws<NotSupportedException>(() => OnnxModelWriter.Build(model, "vgg11", new OnnxWriteOptions([3, 96, 96])));
        output.WriteLine(e.Message);
        Assert.Contains("3x3 map into 7x7", e.Message);
    }

    /// <summary>Calibrates BatchNorm, writes the model, runs both, asserts max |difference| &lt;= 1e-4 x max |logit|; returns the ONNX model.</summary>
    Onnx.ModelProto Compare(ClassifierModel model, string name, long[] input, bool foldBatchNorm)
    {
        using var images = RealImages(input, count: 3);
        CalibrateAndRandomiseBatchNorm(model, images);
        var proto = OnnxModelWriter.Build(model, name, new OnnxWriteOptions(input, foldBatchNorm));
        float[] expected;
        using (no_grad())
        using (var logits = model.call(images))
            expected = logits.contiguous().data<float>().ToArray();

        using var options = new SessionOptions { IntraOpNumThreads = 2 };
        using var session = new InferenceSession(proto.ToByteArray(), options);
        var pixels = new DenseTensor<float>(images.contiguous().data<float>().ToArray(), images.shape.Select(d => (int)d).ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxModelWriter.InputName, pixels)]);
        var actual = results.Single(r => r.Name == OnnxModelWriter.OutputName).AsEnumerable<float>().ToArray();

        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(v => Math.Abs(v)), error = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        output.WriteLine($"{name}: {proto.Graph.Node.Count} nodes, max |logit| {scale:G4}, max |difference| {error:G3} ({error / scale:G3} of the scale)");
        Assert.True(scale > 1e-3, $"{name}: logits too small to compare ({scale:G3})");
        if (error <= 1e-4 * scale) return proto;
        // Some very deep nets (plain110, preact_resnet1001) amplify float32 rounding so much that
        // TorchSharp disagrees with itself by ~1e-3 when only the input's memory layout changes.
        // There ONNX Runtime must agree with TorchSharp within 3x what TorchSharp agrees with itself.
        double noise = SelfDifference(model, images);
        output.WriteLine($"{name}: above 1e-4 of the scale; TorchSharp alone, channels-last against NCHW input, differs by {noise:G3} ({noise / scale:G3} of the scale)");
        Assert.True(error <= 3 * noise, $"{name}: ONNX Runtime differs by {error:G3}, {error / scale:G3} of the logits' scale {scale:G3}, and TorchSharp from itself only by {noise:G3}");
        return proto;
    }

    /// <summary>
    /// The graph as a file whose weights live in an external file of the right size that holds
    /// zeros (sparse, so nothing is written): Debian's checker then validates the graph, the
    /// attributes, the initializers' types and shapes and runs shape inference in milliseconds,
    /// where parsing hundreds of megabytes of weights took it up to 30 s (VGG-11). Files with their
    /// weights inside are checked in OnnxDeployTests.
    /// </summary>
    static string WithExternalWeights(Onnx.ModelProto proto, TempDir dir)
    {
        var model = proto.Clone();
        long offset = 0;
        foreach (var t in model.Graph.Initializer.Where(t => t.HasRawData))
        {
            long length = t.RawData.Length;
            t.ClearRawData();
            t.DataLocation = Onnx.TensorProto.Types.DataLocation.External;
            foreach (var (key, value) in new[] { ("location", "weights.bin"), ("offset", offset.ToString()), ("length", length.ToString()) })
                t.ExternalData.Add(new Onnx.StringStringEntryProto { Key = key, Value = value });
            offset += length;
        }
        using (var weights = File.Create(dir["weights.bin"])) weights.SetLength(offset);
        var path = dir["model.onnx"];
        using (var file = File.Create(path)) model.WriteTo(file);
        return path;
    }

    /// <summary>Max |difference| of TorchSharp's logits for the same images in NCHW and in channels-last memory: the float32 noise of the net itself.</summary>
    static double SelfDifference(ClassifierModel model, Tensor images)
    {
        using var _ = no_grad();
        using var channelsLast = images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        using var a = model.call(images);
        using var b = model.call(channelsLast);
        using var difference = (a - b).abs().max();
        return difference.item<float>();
    }

    /// <summary>
    /// BatchNorm made non-trivial: its running statistics are measured on the test images (one
    /// training-mode forward with momentum 1, so even a 1202-layer net keeps finite activations in
    /// evaluation), then its affine parameters are drawn away from 1 and 0.
    /// </summary>
    internal static void CalibrateAndRandomiseBatchNorm(nn.Module<Tensor, Tensor> model, Tensor images)
    {
        using var _ = no_grad();
        var norms = model.named_modules().Select(m => m.module).OfType<BatchNorm2d>().ToList();
        var momenta = norms.Select(bn => bn.momentum).ToList();
        foreach (var bn in norms) bn.momentum = 1.0;
        model.train();
        using (var calibration = model.call(images)) { }
        model.eval();
        var generator = new TorchSharp.torch.Generator(17);
        for (int i = 0; i < norms.Count; i++)
        {
            var bn = norms[i];
            bn.momentum = momenta[i];
            long c = bn.num_features;
            bn.weight!.copy_(randn(c, generator: generator) * 0.1 + 1);
            bn.bias!.copy_(randn(c, generator: generator) * 0.1);
        }
    }

    /// <summary>The first Imagenette validation photos, resized and centre-cropped to the model's input, ImageNet-normalised.</summary>
    internal static Tensor RealImages(long[] input, int count)
    {
        var root = Path.Combine(TestPaths.SharedData, "imagenette-160", "val");
        var files = Directory.GetFiles(root, "*.JPEG", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(count).ToList();
        int side = (int)input[1];
        var data = new DataConfig { Name = DataConfig.ImageFolder, ImageSize = side, ResizeSize = side, Cache = DecodeCache.None };
        var images = DataSources.Unlabelled(data, files, ["x"], root);
        var loader = DataSources.EvalLoader(data, images, Normalization.ImageNet, count);
        using var batch = loader.Epoch(0).Single();
        var (x, _) = Inputs.ToDevice(batch, CPU, channelsLast: false);
        return x.to(ScalarType.Float32).contiguous().DetachFromDisposeScope();
    }
}
