using TorchSharp;
using static TorchSharp.torch;
using Trainer.Data;
using Trainer.Data.ImageFolder;
using Trainer.Data.Loading;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Runs;

/// <summary>One image's logits and softmax probabilities, in the checkpoint's class order.</summary>
public sealed record ImagePrediction(string File, float[] Logits, float[] Probabilities)
{
    /// <summary>The <paramref name="k"/> most probable classes (fewer when the model has fewer), most probable first; ties keep class order.</summary>
    public IReadOnlyList<(int Class, float Probability)> Top(int k) =>
        Probabilities.Select((p, i) => (Class: i, Probability: p)).OrderByDescending(t => t.Probability).ThenBy(t => t.Class).Take(k).ToList();
}

/// <summary>What `trainer predict` prints or writes, whichever runtime computes it.</summary>
public interface IImagePredictor : IDisposable
{
    /// <summary>The images, in the order predictions come.</summary>
    IReadOnlyList<ImageFile> Files { get; }
    string Model { get; }
    /// <summary>Class names in label order.</summary>
    IReadOnlyList<string> Classes { get; }
    /// <summary>The evaluation transform, for the table's first line.</summary>
    string Transform { get; }
    /// <summary>One prediction per image, in <see cref="Files"/> order.</summary>
    IEnumerable<ImagePrediction> Run();
}

/// <summary>
/// `trainer predict`: a checkpoint's model on every image under a folder, each image through the
/// evaluation transform the run validated with (its config and the normalisation the checkpoint
/// saved), through the loader `trainer eval` uses. <see cref="Open"/> finds the images and loads
/// the model (bad input shows there, except an image that turns out undecodable later);
/// <see cref="Run"/> streams the predictions batch by batch, so memory does not grow with the
/// number of images.
/// </summary>
public sealed class Prediction : IImagePredictor
{
    /// <summary>How many classes a prediction lists.</summary>
    public const int TopK = 5;

    readonly CheckpointModel _checkpoint;
    readonly BatchLoader _loader;

    Prediction(CheckpointModel checkpoint, IReadOnlyList<ImageFile> files, BatchLoader loader, string transform)
    {
        _checkpoint = checkpoint; Files = files; _loader = loader; Transform = transform;
        Classes = ClassNames(checkpoint.Meta, checkpoint.Config.Data);
    }

    /// <summary>The images, in the order predictions come.</summary>
    public IReadOnlyList<ImageFile> Files { get; }
    public string Model => _checkpoint.Meta.Model;
    /// <summary>The run's class names, in label order: readable ones where its data set has a names file (Imagenette's "tench" for n01440764).</summary>
    public IReadOnlyList<string> Classes { get; }
    /// <summary>"shorter side resized to 256 px, the central 224x224; RGB in [0, 1], mean ..., std ...".</summary>
    public string Transform { get; }

    public static Prediction Open(string checkpointPath, string imagesDir, string? device, int batchSize = 256)
    {
        var files = ImageFiles.Find(imagesDir);
        var checkpoint = CheckpointModel.Load(checkpointPath, device);
        try
        {
            var meta = checkpoint.Meta;
            if (meta.Classes.Length != meta.NumClasses)
                throw new BadInputException($"checkpoint {checkpointPath} names {meta.Classes.Length} classes for a model with {meta.NumClasses} outputs");
            // Each image is read once: no decoded-image cache.
            var data = checkpoint.Config.Data with { Cache = DecodeCache.None };
            var images = DataSources.Unlabelled(data, files.Select(f => f.Path).ToList(), meta.Classes, imagesDir);
            var loader = DataSources.EvalLoader(data, images, meta.Normalization, batchSize, pinMemory: checkpoint.Device.type == DeviceType.CUDA);
            return new Prediction(checkpoint, files, loader, Describe(data, meta.Normalization));
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>One prediction per image, in <see cref="Files"/> order.</summary>
    public IEnumerable<ImagePrediction> Run()
    {
        int done = 0, classes = _checkpoint.Meta.NumClasses;
        foreach (var batch in _loader.Epoch(0))
        {
            float[] logits, probabilities;
            using (batch)
            using (no_grad())
            using (NewDisposeScope())
            {
                var (x, _) = Inputs.ToDevice(batch, _checkpoint.Device, _checkpoint.Config.Train.ChannelsLast);
                var output = Evaluator.Logits(_checkpoint.Model, x).to(ScalarType.Float32).cpu();
                logits = output.contiguous().data<float>().ToArray();
                probabilities = output.softmax(1).contiguous().data<float>().ToArray();
            }
            for (int i = 0; i < logits.Length / classes; i++)
            {
                var row = (i * classes)..((i + 1) * classes);
                yield return new ImagePrediction(Files[done++].Relative, logits[row], probabilities[row]);
            }
        }
    }

    /// <summary>
    /// The names the run's classes go by: those its checkpoint saved; for a checkpoint written
    /// before they were saved, the names file of its image folder when that is still there (read as
    /// training and `data inspect` read it); otherwise the class (folder) names.
    /// </summary>
    internal static IReadOnlyList<string> ClassNames(Checkpoints.CheckpointMeta meta, DataConfig data)
    {
        IReadOnlyList<string> names = meta.ClassNames is { } saved && saved.Length == meta.Classes.Length ? saved
            : data.Name == DataConfig.ImageFolder && Directory.Exists(data.Root) && (data.ClassNames.Length == 0 || File.Exists(data.ClassNames))
                ? ImageFolderSet.NamesFor(data.Root, meta.Classes, data.ClassNames)
                : meta.Classes;
        // Two classes under one name would make a prediction ambiguous: then the folder names.
        return names.Distinct().Count() == names.Count ? names : meta.Classes;
    }

    internal static string Describe(DataConfig c, Data.Transforms.Normalization normalization)
    {
        const int cifar = Data.Cifar.CifarFormat.Side;
        var geometry = DataSources.ReadsAsImageFolder(c)
            ? $"shorter side resized to {c.ResizeSize} px, the central {c.ImageSize}x{c.ImageSize}{(c.TenCrop ? " (10 crops, logits averaged)" : "")}"
            : $"shorter side resized to {cifar} px, the central {cifar}x{cifar} (as the CIFAR images the model saw)";
        return $"{geometry}; {normalization.Describe()}";
    }

    public void Dispose() => _checkpoint.Dispose();
}
