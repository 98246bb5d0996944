using System.Text.Json;
using Trainer.Data;
using Trainer.Recipes;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Sinks;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>A CNN of the caller's own, as a user writes it: any nn.Module returning (batch, classes) logits.</summary>
sealed class TinyCnn : nn.Module<Tensor, Tensor>
{
    readonly Sequential _layers;

    public TinyCnn(int classes, int outputs = -1) : base("tiny_cnn")
    {
        _layers = nn.Sequential(nn.Conv2d(3, 8, 3, padding: 1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(8, outputs > 0 ? outputs : classes));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => _layers.call(x);
}

/// <summary>Labelled JPEG files listed in a CSV (path,label), read as encoded bytes: data of the caller's own.</summary>
sealed class CsvImages : IEncodedImages
{
    readonly List<(string Path, int Label)> _rows;

    public CsvImages(string csv, IReadOnlyList<string> classes)
    {
        _rows = File.ReadLines(csv).Skip(1).Select(line => line.Split(',')).Select(f => (f[0], int.Parse(f[1]))).ToList();
        Classes = classes;
        Source = csv;
    }

    public int Count => _rows.Count;
    public int Label(int index) => _rows[index].Label;
    public IReadOnlyList<string> Classes { get; }
    public string Source { get; }
    public byte[] Encoded(int index) => File.ReadAllBytes(_rows[index].Path);
}

/// <summary>A callback of the caller's own: counts what it hears, can stop early or throw.</summary>
sealed class RecordingSink(int endAfterEpoch = 0, int throwAtEpoch = 0) : TrainingSink
{
    public int Batches, Epochs, Ended;

    public override void BatchEnded(TrainingSession session, BatchProgress progress) => Batches++;

    public override void EpochEnded(TrainingSession session, EpochRecord epoch)
    {
        Epochs++;
        if (epoch.Epoch == throwAtEpoch) throw new InvalidOperationException("the metrics server is down");
        if (epoch.Epoch == endAfterEpoch) session.EndAfterThisEpoch();
    }

    public override void RunEnded(TrainingSession session) => Ended++;
}

/// <summary>The public API a user's own program calls: their model, their data, their callbacks, the same run folder as `trainer train`.</summary>
public class TrainingApiTests
{
    static readonly string[] Quick = ["data.subset=96", "data.val_subset=64", "train.batch_size=32", "train.epochs=2", "log.progress=false"];

    static Training OwnCnn(string folder, params string[] more) =>
        new(Training.DefaultRecipe([.. Quick, .. more])) { OutDir = folder, ModelName = "tiny_cnn", Model = classes => new TinyCnn(classes), Output = TextWriter.Null };

    [Fact]
    public void Own_module_trains_with_the_resnet_recipe_into_a_full_run_folder_and_resumes()
    {
        using var dir = new TempDir();
        var sink = new RecordingSink();
        var run = OwnCnn(dir["run"]);
        run.Sinks.Add(sink);
        var session = run.Run();

        Assert.Equal(2, session.Epoch);
        Assert.Equal(6, session.Step);                         // 96 images, batch 32, two epochs
        Assert.Equal((6, 2, 1), (sink.Batches, sink.Epochs, sink.Ended));
        Assert.Equal(0.9, session.Config.Optimizer.Momentum);  // the ResNet recipe, untouched
        Assert.Equal(1e-4, session.Config.Optimizer.WeightDecay);
        var rows = CsvSink.Read(Path.Combine(dir["run"], "metrics.csv"));
        Assert.Equal([1, 2], rows.Select(r => r.Epoch));
        var yaml = File.ReadAllText(Path.Combine(dir["run"], "config.yaml"));
        Assert.Contains("model: tiny_cnn", yaml);
        Assert.Contains("own: true", yaml);   // model_options.own: the CLI knows it cannot build this model
        Assert.True(File.Exists(Path.Combine(dir["run"], "checkpoints", "last.ckpt")));
        Assert.NotEmpty(Directory.GetFiles(dir["run"], "events.out.tfevents.*"));
        using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["run"], "summary.json"))))
        {
            Assert.Equal("tiny_cnn", summary.RootElement.GetProperty("model").GetString());
            Assert.True(summary.RootElement.GetProperty("finished").GetBoolean());
        }

        // The CLI and a resume without the model say what is missing, in one line, and keep the run.
        var last = Path.Combine(dir["run"], "checkpoints", "last.ckpt");
        PredictTests.AssertBadInput(Cli.Run("eval", "--checkpoint", last), "tiny_cnn is a model of your own", "resume, evaluate or export it from code");
        PredictTests.AssertBadInput(Cli.Run("export", "--checkpoint", last, "--out", dir["m.onnx"]), "tiny_cnn is a model of your own");
        PredictTests.AssertBadInput(Cli.Run("train", "--resume", "--out", dir["run"]), "trained tiny_cnn, a model of your own: resume it from code with the same Training.Model");
        Assert.False(File.Exists(dir["m.onnx"]));
        var before = File.ReadAllBytes(last);

        // Longer, from the run folder's own config and last checkpoint, with the same model.
        var resumed = Training.Resume(dir["run"], "train.epochs=3");
        resumed.Model = classes => new TinyCnn(classes);
        resumed.Output = TextWriter.Null;
        Assert.Equal(before, File.ReadAllBytes(last));
        var more = resumed.Run();
        Assert.Equal((3, 9L), (more.Epoch, more.Step));
        Assert.Equal([1, 2, 3], CsvSink.Read(Path.Combine(dir["run"], "metrics.csv")).Select(r => r.Epoch));
    }

    [Fact]
    public void Own_encoded_images_from_a_csv_fine_tune_a_registry_model()
    {
        using var dir = new TempDir();
        var root = Path.Combine(TestPaths.SharedData, "imagenette-160");
        string[] classes = ["n01440764", "n02102040"];
        string Csv(string split, int perClass)
        {
            var path = dir[$"{split}.csv"];
            var lines = new List<string> { "path,label" };
            for (int label = 0; label < classes.Length; label++)
                lines.AddRange(Directory.GetFiles(Path.Combine(root, split, classes[label])).Order(StringComparer.Ordinal).Take(perClass).Select(f => $"{f},{label}"));
            File.WriteAllLines(path, lines);
            return path;
        }
        var train = new CsvImages(Csv("train", 8), classes);
        var val = new CsvImages(Csv("val", 4), classes);
        var config = Training.DefaultRecipe("model=resnet18", "data.image_size=64", "data.resize_size=73", "train.batch_size=8", "train.epochs=1",
            "finetune.train=head", "optimizer.lr=0.01", "log.progress=false");
        var session = new Training(config) { OutDir = dir["run"], Data = new(train, val, null), Output = TextWriter.Null }.Run();

        Assert.Equal((1, 2L), (session.Epoch, session.Step));
        Assert.Equal(2, session.Classes.Count);
        Assert.Equal(16, session.TrainSamples);
        Assert.True(session.TrainableParameters < session.Parameters);   // only the head trained
        var row = Assert.Single(CsvSink.Read(Path.Combine(dir["run"], "metrics.csv")));
        Assert.InRange(row.ValTop1, 0, 1);
        var last = Path.Combine(dir["run"], "checkpoints", "last.ckpt");
        Assert.True(File.Exists(last));
        var yaml = File.ReadAllText(Path.Combine(dir["run"], "config.yaml"));
        Assert.Contains("name: own", yaml);
        Assert.Contains($"root: {dir["train.csv"]}", yaml);

        // A registry model trained on data of one's own predicts image files through the CLI (64 px, as trained)...
        var predicted = Cli.Run("predict", "--checkpoint", last, "--images", Path.Combine(root, "val", classes[1]));
        Assert.True(predicted.ExitCode == 0, predicted.Error);
        Assert.Contains("the central 64x64", predicted.Output);
        // ...but cannot resume without that data, in code or from the CLI.
        var resumed = Training.Resume(dir["run"], "train.epochs=2");
        resumed.Output = TextWriter.Null;
        Assert.Contains("trained on data given in code", Assert.Throws<BadInputException>(() => resumed.Run()).Message);
        PredictTests.AssertBadInput(Cli.Run("train", "--resume", "--out", dir["run"], "--set", "train.epochs=2"), "trained on data given in code");
        PredictTests.AssertBadInput(Cli.Run("eval", "--checkpoint", last), "data.name own", "give that data again from code, or an image folder with --data");
    }

    [Fact]
    public void Own_decoded_images_train_with_cifar_augmentation_and_are_recorded_as_own_data()
    {
        using var dir = new TempDir();
        var cifar = Trainer.Data.Cifar.CifarSample.LoadTrain();
        var train = cifar.Subset(Enumerable.Range(0, 64).ToList(), "my-pixels (train)");
        var val = cifar.Subset(Enumerable.Range(64, 32).ToList(), "my-pixels (val)");
        var run = new Training(Training.DefaultRecipe("train.batch_size=32", "train.epochs=1", "log.progress=false"))
            { OutDir = dir["run"], ModelName = "tiny_cnn", Model = classes => new TinyCnn(classes), Data = new(train, val, null), Output = TextWriter.Null };
        var session = run.Run();
        Assert.Equal((1, 2L, 64), (session.Epoch, session.Step, session.TrainSamples));
        var yaml = File.ReadAllText(Path.Combine(dir["run"], "config.yaml"));
        Assert.Contains("name: own", yaml);
        Assert.Contains("root: my-pixels (train)", yaml);
        Assert.Contains("image_size: 32", yaml);   // the size a prediction resizes its files to
    }

    [Fact]
    public void A_sink_ends_the_run_early_as_a_finished_run()
    {
        using var dir = new TempDir();
        var sink = new RecordingSink(endAfterEpoch: 1);
        // Checkpoints due every second epoch: the run that ends after the first still ends saved.
        var run = OwnCnn(dir["run"], "train.epochs=5", "checkpoint.every_epochs=2");
        run.Sinks.Add(sink);
        var session = run.Run();
        Assert.Equal((1, false), (session.Epoch, session.Stopped));
        Assert.Equal((1, 1), (sink.Epochs, sink.Ended));
        Assert.Equal(3, Trainer.Recipes.Checkpoints.Checkpoint.ReadMeta(Path.Combine(dir["run"], "checkpoints", "last.ckpt")).Step);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["run"], "summary.json")));
        Assert.True(summary.RootElement.GetProperty("finished").GetBoolean());
    }

    [Fact]
    public void A_throwing_callback_is_named_and_the_saved_epoch_is_kept_and_resumes()
    {
        using var dir = new TempDir();
        var run = OwnCnn(dir["run"]);
        run.Sinks.Add(new RecordingSink(throwAtEpoch: 1));
        var e = Assert.Throws<CallbackFailedException>(() => run.Run());
        Assert.Contains("callback RecordingSink.EpochEnded failed at step 3 (epoch 1): InvalidOperationException: the metrics server is down", e.Message);
        Assert.Contains("last.ckpt holds step 3", e.Message);
        Assert.Equal([1], CsvSink.Read(Path.Combine(dir["run"], "metrics.csv")).Select(r => r.Epoch));

        var resumed = Training.Resume(dir["run"]);
        resumed.Model = classes => new TinyCnn(classes);
        resumed.Output = TextWriter.Null;
        Assert.Equal(2, resumed.Run().Epoch);
    }

    [Fact]
    public void A_model_that_is_not_a_classifier_of_the_classes_is_refused_before_anything_is_written()
    {
        using var dir = new TempDir();
        var run = OwnCnn(dir["run"]);
        run.Model = classes => new TinyCnn(classes, outputs: 7);
        var e = Assert.Throws<BadInputException>(() => run.Run());
        Assert.Equal("model tiny_cnn returns (2, 7) for a batch of 2 images, but a classifier of 10 classes must return (2, 10) logits", e.Message);
        Assert.False(File.Exists(Path.Combine(dir["run"], "config.yaml")));
        Assert.False(File.Exists(Path.Combine(dir["run"], "metrics.csv")));

        var unnamed = new Training(Training.DefaultRecipe(Quick)) { OutDir = dir["other"], Model = classes => new TinyCnn(classes) };
        Assert.Contains("Training.ModelName must name your own model", Assert.Throws<BadInputException>(() => unnamed.Run()).Message);
        var taken = new Training(Training.DefaultRecipe(Quick)) { OutDir = dir["other"], ModelName = "resnet20", Model = classes => new TinyCnn(classes) };
        Assert.Contains("model 'resnet20' is marked as your own (model_options.own) but is a registry model's name", Assert.Throws<BadInputException>(() => taken.Run()).Message);
        var inCode = new Training(Training.DefaultRecipe(Quick) with { Model = "resnet21" }) { OutDir = dir["other"] };
        Assert.Contains("the config given to Training: unknown model 'resnet21'", Assert.Throws<BadInputException>(() => inCode.Run()).Message);
        Assert.False(Directory.Exists(dir["other"]));
    }

    [Fact]
    public void Labels_out_of_range_are_refused_naming_the_image_and_nothing_is_written()
    {
        using var dir = new TempDir();
        var pixels = new byte[6 * 3 * 8 * 8];
        var images = new ImageDataset(pixels, [0, 1, 2, 1, 3, 0], 3, 8, 8, ["a", "b", "c"], "my-images");
        var run = new Training(Training.DefaultRecipe("log.progress=false")) { OutDir = dir["run"], Data = new(images, images, null), Output = TextWriter.Null };
        var e = Assert.Throws<BadInputException>(() => run.Run());
        Assert.Equal("my-images: image 4 has label 3, outside 0..2 (3 classes)", e.Message);
        Assert.False(Directory.Exists(dir["run"]) && Directory.EnumerateFileSystemEntries(dir["run"]).Any(f => !f.EndsWith(".lock", StringComparison.Ordinal)));
    }
}
