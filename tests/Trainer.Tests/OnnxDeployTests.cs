using Google.Protobuf;
using Trainer.Recipes.Weights;
using Trainer.Recipes.Weights.Onnx;
using Xunit;
using Xunit.Abstractions;

namespace Trainer.Tests;

/// <summary>A ResNet-18 (ML.NET's ImageNet weights) whose head was fine-tuned on Imagenette for one short epoch, exported as ONNX.</summary>
public sealed class FineTunedOnnxFixture : IDisposable
{
    readonly TempDir _dir = new();
    public string Imagenette { get; } = Path.Combine(TestPaths.SharedData, "imagenette-160");
    public string Checkpoint => _dir["run/checkpoints/last.ckpt"];
    public string Onnx => _dir["model.onnx"];
    public TempDir Dir => _dir;

    public FineTunedOnnxFixture()
    {
        var run = Cli.Run("train", "--out", _dir["run"], "--set", "model=mlnet_resnet18", "--set", $"init.weights={PretrainedPackages.MlNetResNet18.Require()}",
            "--set", "finetune.train=head", "--set", "data.name=imagefolder", "--set", $"data.root={Imagenette}", "--set", "data.per_class=3",
            "--set", "data.image_size=64", "--set", "data.resize_size=73", "--set", "train.batch_size=15", "--set", "train.epochs=1",
            "--set", "optimizer.lr=0.01", "--set", "log.histograms=false", "--set", "log.image_grid=false", "--set", "log.progress=false");
        Assert.True(run.ExitCode == 0, run.Error);
        var export = Cli.Run("export", "--checkpoint", Checkpoint, "--out", Onnx);
        Assert.True(export.ExitCode == 0, export.Error);
    }

    public void Dispose() => _dir.Dispose();
}

public sealed class OnnxDeployTests(FineTunedOnnxFixture trained, ITestOutputHelper output) : IClassFixture<FineTunedOnnxFixture>
{
    static void AssertBadInput(Cli.Result result, params string[] expected) => PredictTests.AssertBadInput(result, expected);

    /// <summary>
    /// predict --model through ONNX Runtime on the 500 validation images gives the top-1 that
    /// `trainer eval` gives the checkpoint. The two runtimes round differently (about 1e-6 of the
    /// logits), so an image whose two best logits lie closer than 1e-4 of their scale may go either
    /// way; the images that disagree must all be such near-ties (there were none when this was written).
    /// </summary>
    [Fact]
    public void Predict_through_onnx_runtime_gives_the_top1_of_trainer_eval()
    {
        var eval = Cli.Run("eval", "--checkpoint", trained.Checkpoint, "--json");
        Assert.True(eval.ExitCode == 0, eval.Error);
        using var json = System.Text.Json.JsonDocument.Parse(eval.Output);
        double evalTop1 = json.RootElement.GetProperty("top1").GetDouble();
        int samples = json.RootElement.GetProperty("samples").GetInt32();

        var val = Path.Combine(trained.Imagenette, "val");
        var onnxCsv = trained.Dir["onnx.csv"];
        var viaOnnx = Cli.Run("predict", "--model", trained.Onnx, "--images", val, "--out", onnxCsv, "--logits");
        Assert.True(viaOnnx.ExitCode == 0, viaOnnx.Error);
        var checkpointCsv = trained.Dir["checkpoint.csv"];
        var viaCheckpoint = Cli.Run("predict", "--checkpoint", trained.Checkpoint, "--images", val, "--out", checkpointCsv, "--logits");
        Assert.True(viaCheckpoint.ExitCode == 0, viaCheckpoint.Error);

        var names = File.ReadAllLines(Path.Combine(trained.Imagenette, "classes.txt")).Select(l => l.Split('\t')).ToDictionary(p => p[1], p => p[0]);
        var onnx = Rows(onnxCsv);
        var reference = Rows(checkpointCsv);
        Assert.Equal(samples, onnx.Count);
        int correct = onnx.Count(r => names[r.Top1] == r.File.Split('/')[0]);
        double onnxTop1 = correct / (double)onnx.Count;
        var disagreeing = onnx.Zip(reference).Where(p => p.First.Top1 != p.Second.Top1).ToList();
        double maxDifference = onnx.Zip(reference).Max(p => p.First.Logits.Zip(p.Second.Logits, (a, b) => Math.Abs(a - b)).Max());
        output.WriteLine($"eval top-1 {evalTop1:P2} on {samples}; predict --model top-1 {onnxTop1:P2}; {disagreeing.Count} images disagree; max |logit difference| {maxDifference:G3}");
        foreach (var (o, c) in disagreeing)
        {
            var sorted = c.Logits.OrderDescending().ToArray();
            Assert.True(sorted[0] - sorted[1] < 1e-4 * Math.Abs(sorted[0]), $"{o.File}: ONNX says {o.Top1}, the checkpoint {c.Top1}, and it is no near-tie");
        }
        Assert.True(Math.Abs(onnxTop1 - evalTop1) * samples <= disagreeing.Count + 1e-9, $"top-1 {onnxTop1:P2} through ONNX Runtime, {evalTop1:P2} from trainer eval");
        Assert.True(maxDifference < 1e-3, $"logits differ by {maxDifference}");
    }

    sealed record Row(string File, string Top1, float[] Logits);

    static List<Row> Rows(string csv) => File.ReadAllLines(csv).Skip(1).Select(line =>
    {
        var cells = line.Split(',');
        return new Row(cells[0], cells[1], cells[4..].Select(c => float.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToArray());
    }).ToList();

    [Fact]
    public void Export_import_export_gives_identical_initializers_and_the_same_evaluation()
    {
        var back = trained.Dir["imported.ckpt"];
        var imported = Cli.Run("import", "--from", trained.Onnx, "--out", back);
        Assert.True(imported.ExitCode == 0, imported.Error);
        Assert.Contains("mlnet_resnet18", imported.Output);
        var again = trained.Dir["again.onnx"];
        var exported = Cli.Run("export", "--checkpoint", back, "--out", again);
        Assert.True(exported.ExitCode == 0, exported.Error);

        var first = Initializers(trained.Onnx);
        var second = Initializers(again);
        Assert.Equal(first.Keys.Order(), second.Keys.Order());
        foreach (var (name, bytes) in first) Assert.True(bytes.Equals(second[name]), $"initializer {name} changed in the round trip");
        output.WriteLine($"{first.Count} initializers identical after export, import, export");

        // The imported checkpoint is the run: same classes, same transform, same numbers (the loss's
        // last digits depend on libtorch's thread count, which earlier commands in this process may set).
        using var original = System.Text.Json.JsonDocument.Parse(Cli.Run("eval", "--checkpoint", trained.Checkpoint, "--json").Output);
        using var roundTripped = System.Text.Json.JsonDocument.Parse(Cli.Run("eval", "--checkpoint", back, "--json").Output);
        foreach (var key in new[] { "samples", "top1", "top5" })
            Assert.Equal(original.RootElement.GetProperty(key).GetDouble(), roundTripped.RootElement.GetProperty(key).GetDouble());
        double loss = original.RootElement.GetProperty("loss").GetDouble();
        Assert.Equal(loss, roundTripped.RootElement.GetProperty("loss").GetDouble(), 1e-6 * loss);
    }

    /// <summary>The same round trip for other families, trained for a moment on the CIFAR sample: dense blocks, inverted residuals with an MLP head.</summary>
    [Theory]
    [InlineData("densenet40_12", "linear")]
    [InlineData("mobilenet_v2_cifar", "mlp")]
    public void Any_family_round_trips_through_onnx(string model, string head)
    {
        using var dir = new TempDir();
        var run = Cli.Run("train", "--out", dir["run"], "--set", $"model={model}", "--set", $"head.type={head}", "--set", "head.hidden=32",
            "--set", "data.subset=64", "--set", "data.val_subset=32", "--set", "train.batch_size=32", "--set", "train.epochs=1",
            "--set", "log.progress=false", "--set", "log.histograms=false", "--set", "log.image_grid=false");
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal(0, Cli.Run("export", "--checkpoint", dir["run/checkpoints/last.ckpt"], "--out", dir["a.onnx"]).ExitCode);
        var imported = Cli.Run("import", "--from", dir["a.onnx"], "--out", dir["b.ckpt"]);
        Assert.True(imported.ExitCode == 0, imported.Error);
        Assert.Equal(0, Cli.Run("export", "--checkpoint", dir["b.ckpt"], "--out", dir["c.onnx"]).ExitCode);
        var first = Initializers(dir["a.onnx"]);
        var second = Initializers(dir["c.onnx"]);
        Assert.Equal(first.Keys.Order(), second.Keys.Order());
        Assert.All(first, p => Assert.True(p.Value.Equals(second[p.Key]), $"{p.Key} changed"));
        if (head == "mlp") Assert.Contains("head_hidden.0.weight", first.Keys);
        output.WriteLine($"{model} ({head} head): {first.Count} initializers identical");
    }

    /// <summary>A ten-crop run: predict --model averages the logits of the ten crops as predict --checkpoint (and trainer eval) do.</summary>
    [Fact]
    public void Predict_through_onnx_averages_ten_crops_as_the_checkpoint_does()
    {
        using var dir = new TempDir();
        var run = Cli.Run("train", "--out", dir["run"], "--set", "model=resnet20", "--set", "data.name=imagefolder", "--set", $"data.root={trained.Imagenette}",
            "--set", "data.per_class=2", "--set", "data.image_size=32", "--set", "data.resize_size=36", "--set", "data.ten_crop=true",
            "--set", "data.val_subset=20", "--set", "train.batch_size=10", "--set", "train.epochs=1",
            "--set", "log.progress=false", "--set", "log.histograms=false", "--set", "log.image_grid=false");
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal(0, Cli.Run("export", "--checkpoint", dir["run/checkpoints/last.ckpt"], "--out", dir["m.onnx"]).ExitCode);
        var images = Path.Combine(trained.Imagenette, "val", "n01440764");
        Assert.Equal(0, Cli.Run("predict", "--model", dir["m.onnx"], "--images", images, "--out", dir["onnx.csv"], "--logits").ExitCode);
        Assert.Equal(0, Cli.Run("predict", "--checkpoint", dir["run/checkpoints/last.ckpt"], "--images", images, "--out", dir["ckpt.csv"], "--logits").ExitCode);
        var onnx = Rows(dir["onnx.csv"]);
        var reference = Rows(dir["ckpt.csv"]);
        Assert.Equal(50, onnx.Count);
        double scale = reference.Max(r => r.Logits.Max(Math.Abs));
        double difference = onnx.Zip(reference).Max(p => p.First.Logits.Zip(p.Second.Logits, (a, b) => Math.Abs(a - b)).Max());
        output.WriteLine($"ten crops: max |logit difference| {difference:G3}, scale {scale:G3}");
        Assert.True(difference <= 1e-4 * scale, $"ten-crop logits differ by {difference:G3} (scale {scale:G3})");
    }

    static Dictionary<string, ByteString> Initializers(string path) =>
        OnnxModel.Parse(File.ReadAllBytes(path)).Graph.Initializer.ToDictionary(t => t.Name, t => t.RawData);

    [Fact]
    public void Debian_onnx_checker_accepts_the_exported_files_with_and_without_preprocessing_and_folding()
    {
        var preprocessed = trained.Dir["pre.onnx"];
        var folded = trained.Dir["folded.onnx"];
        Assert.Equal(0, Cli.Run("export", "--checkpoint", trained.Checkpoint, "--out", preprocessed, "--preprocess").ExitCode);
        Assert.Equal(0, Cli.Run("export", "--checkpoint", trained.Checkpoint, "--out", folded, "--fold-bn", "--preprocess").ExitCode);
        var report = Python.Run("onnx_check.py", trained.Onnx, preprocessed, folded);
        output.WriteLine(report);
        Assert.Contains("checked 3", report);

        // The same predictions whatever the form: normalisation in the graph or not, BatchNorm folded or not.
        var images = Path.Combine(trained.Imagenette, "val", "n01440764");
        var plain = Cli.Run("predict", "--model", trained.Onnx, "--images", images);
        var baked = Cli.Run("predict", "--model", folded, "--images", images);
        Assert.True(plain.ExitCode == 0 && baked.ExitCode == 0, plain.Error + baked.Error);
        Assert.Equal(Tops(plain.Output), Tops(baked.Output));
    }

    static List<string> Tops(string table) => table.Split('\n').Skip(2).Where(l => l.Contains(".JPEG")).Select(l => string.Join(" ", l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(2))).ToList();

    [Fact]
    public void The_metadata_names_the_classes_the_input_and_the_normalisation()
    {
        var model = OnnxModel.Parse(File.ReadAllBytes(trained.Onnx));
        var metadata = model.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal("mlnet_resnet18", metadata["trainer.model"]);
        Assert.Contains("\"tench\"", metadata["trainer.class_names"]);
        Assert.Contains("BGR", metadata["trainer.normalization"]);   // ML.NET's CNTK ResNet-18 takes BGR in [0, 255]
        Assert.Equal(17, model.OpsetImport.Single().Version);
        Assert.Equal(8, model.IrVersion);
        var input = model.Graph.Input.Single();
        Assert.Equal("batch", input.Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal([3L, 64, 64], input.Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue));
        Assert.DoesNotContain(model.Graph.Node, n => n.OpType == "Dropout");
    }

    [Fact]
    public void A_features_only_checkpoint_is_refused_in_one_line()
    {
        var features = trained.Dir["features.ckpt"];
        Assert.Equal(0, Cli.Run("import", "--from", WeightsFile.NuGetResNet18, "--model", "mlnet_resnet18", "--out", features).ExitCode);
        AssertBadInput(Cli.Run("export", "--checkpoint", features, "--out", trained.Dir["features.onnx"]), features, "features only");
        Assert.False(File.Exists(trained.Dir["features.onnx"]));
    }

    [Theory]
    [InlineData("text")]
    [InlineData("jpeg")]
    [InlineData("truncated")]
    [InlineData("foreign")]
    [InlineData("input_shape")]
    [InlineData("folded_import")]
    public void Bad_onnx_input_is_one_line_and_exit_2(string kind)
    {
        var path = trained.Dir[$"bad-{kind}.onnx"];
        var images = Path.Combine(trained.Imagenette, "val", "n01440764");
        switch (kind)
        {
            case "text":
                File.WriteAllText(path, "name,value\nlr,0.1\n");
                AssertBadInput(Cli.Run("predict", "--model", path, "--images", images), path);
                break;
            case "jpeg":
                File.Copy(Directory.GetFiles(images).Order(StringComparer.Ordinal).First(), path);
                AssertBadInput(Cli.Run("predict", "--model", path, "--images", images), path);
                break;
            case "truncated":
                var bytes = File.ReadAllBytes(trained.Onnx);
                File.WriteAllBytes(path, bytes[..(bytes.Length * 2 / 3)]);
                AssertBadInput(Cli.Run("predict", "--model", path, "--images", images), path);
                break;
            case "foreign":
                // ML.NET's own ResNet-18: a fine ONNX model, but nothing says its classes or transform.
                AssertBadInput(Cli.Run("predict", "--model", PretrainedPackages.MlNetResNet18.Require(), "--images", images), "no trainer metadata");
                break;
            case "input_shape":
                var model = OnnxModel.Parse(File.ReadAllBytes(trained.Onnx));
                foreach (var d in model.Graph.Input[0].Type.TensorType.Shape.Dim.Skip(2)) d.DimValue = 96;
                File.WriteAllBytes(path, model.ToByteArray());
                AssertBadInput(Cli.Run("predict", "--model", path, "--images", images), path, "3x96x96", "3x64x64");
                break;
            default:
                Assert.Equal(0, Cli.Run("export", "--checkpoint", trained.Checkpoint, "--out", path, "--fold-bn").ExitCode);
                var target = trained.Dir["from-folded.ckpt"];
                AssertBadInput(Cli.Run("import", "--from", path, "--out", target), path, "--fold-bn");
                Assert.False(File.Exists(target));
                break;
        }
    }

    /// <summary>The C# of docs/deploy.md, as a service would hold it: compiled here (with a console project's implicit usings) and run on the exported model.</summary>
    [Fact]
    public void The_csharp_in_docs_deploy_md_compiles_and_classifies_as_predict_does()
    {
        var markdown = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "docs", "deploy.md"));
        int marker = markdown.IndexOf("<!-- csharp-deploy-snippet", StringComparison.Ordinal);
        Assert.True(marker >= 0, "docs/deploy.md lost its snippet marker");
        int start = markdown.IndexOf("```csharp\n", marker, StringComparison.Ordinal) + "```csharp\n".Length;
        var code = markdown[start..markdown.IndexOf("\n```", start, StringComparison.Ordinal)];
        const string implicitUsings = "global using System; global using System.IO; global using System.Linq; global using System.Collections.Generic;";
        var trees = new[] { code, implicitUsings }.Select(c => Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(c)).ToArray();
        var platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var references = platform.Append(typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly.Location).Append(typeof(SkiaSharp.SKBitmap).Assembly.Location)
            .Distinct().Select(p => Microsoft.CodeAnalysis.MetadataReference.CreateFromFile(p));
        var compilation = Microsoft.CodeAnalysis.CSharp.CSharpCompilation.Create("DeploySnippet", trees, references,
            new Microsoft.CodeAnalysis.CSharp.CSharpCompilationOptions(Microsoft.CodeAnalysis.OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: Microsoft.CodeAnalysis.NullableContextOptions.Enable));
        using var assembly = new MemoryStream();
        var emitted = compilation.Emit(assembly);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics.Where(d => d.Severity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error)));
        var classify = System.Reflection.Assembly.Load(assembly.ToArray()).GetType("ImageClassifier")!.GetMethod("Classify")!;

        var model = trained.Dir["service.onnx"];
        Assert.Equal(0, Cli.Run("export", "--checkpoint", trained.Checkpoint, "--out", model, "--preprocess").ExitCode);
        var images = Path.Combine(trained.Imagenette, "val", "n03028079");
        var files = Directory.GetFiles(images).Order(StringComparer.Ordinal).Take(6).ToList();
        var predicted = Cli.Run("predict", "--model", model, "--images", images, "--out", trained.Dir["service.csv"]);
        Assert.True(predicted.ExitCode == 0, predicted.Error);
        var expected = Rows(trained.Dir["service.csv"]).ToDictionary(r => r.File, r => r.Top1);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model);
        int agree = 0;
        foreach (var file in files)
        {
            var (label, probability) = ((string, float))classify.Invoke(null, [session, file])!;
            output.WriteLine($"{Path.GetFileName(file)}: {label} {probability:F3} (predict: {expected[Path.GetFileName(file)]})");
            Assert.InRange(probability, 0.1f, 1f);   // at least 1 / 10 classes
            if (label == expected[Path.GetFileName(file)]) agree++;
        }
        // Skia's resampling is not the loader's, so a doubtful image may tip; the labels must mostly agree.
        Assert.True(agree >= files.Count - 1, $"the documented C# agrees with predict --model on {agree} of {files.Count} images");
    }


    [Fact]
    public void Preprocess_and_fold_bn_are_refused_for_pytorch_output()
    {
        AssertBadInput(Cli.Run("export", "--checkpoint", trained.Checkpoint, "--out", trained.Dir["x.pth"], "--preprocess"), "--preprocess");
    }
}
