using TorchSharp;
using static TorchSharp.torch;
using Trainer.Data;
using Trainer.Data.ImageFolder;
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

/// <summary>What `trainer predict` found: the model, its class names, the transform the images went through, one prediction per image.</summary>
public sealed record PredictionResult(string Model, IReadOnlyList<string> Classes, string Transform, IReadOnlyList<ImagePrediction> Images);

/// <summary>
/// `trainer predict`: a checkpoint's model on every image under a folder, each image through the
/// evaluation transform the run validated with (its config and the normalisation the checkpoint
/// saved), through the same loader `trainer eval` uses.
/// </summary>
public static class Prediction
{
    /// <summary>How many classes a prediction lists.</summary>
    public const int TopK = 5;

    public static PredictionResult Run(string checkpointPath, string imagesDir, string? device, int batchSize = 256)
    {
        var files = ImageFiles.Find(imagesDir);
        using var loaded = CheckpointModel.Load(checkpointPath, device);
        var (config, meta) = (loaded.Config, loaded.Meta);
        if (meta.Classes.Length != meta.NumClasses)
            throw new BadInputException($"checkpoint {checkpointPath} names {meta.Classes.Length} classes for a model with {meta.NumClasses} outputs");
        // Prediction reads each image once: no decoded-image cache on disk.
        var data = config.Data with { Cache = Data.ImageFolder.DecodeCache.None };
        var images = DataSources.Unlabelled(data, files.Select(f => f.Path).ToList(), meta.Classes, imagesDir);
        var loader = DataSources.EvalLoader(data, images, meta.Normalization, batchSize, pinMemory: loaded.Device.type == DeviceType.CUDA);
        var predictions = new List<ImagePrediction>(files.Count);
        using (no_grad())
        {
            foreach (var batch in loader.Epoch(0))
            {
                using (batch)
                using (NewDisposeScope())
                {
                    var (x, _) = Inputs.ToDevice(batch, loaded.Device, config.Train.ChannelsLast);
                    var logits = Evaluator.Logits(loaded.Model, x).to(ScalarType.Float32).cpu();
                    var probabilities = logits.softmax(1);
                    int n = (int)logits.shape[0], k = meta.NumClasses;
                    var l = logits.contiguous().data<float>().ToArray();
                    var p = probabilities.contiguous().data<float>().ToArray();
                    for (int i = 0; i < n; i++)
                        predictions.Add(new ImagePrediction(files[predictions.Count].Relative, l[(i * k)..((i + 1) * k)], p[(i * k)..((i + 1) * k)]));
                }
            }
        }
        return new PredictionResult(meta.Model, meta.Classes, Describe(data, meta.Normalization), predictions);
    }

    /// <summary>"shorter side resized to 256 px, the central 224x224; RGB in [0, 1], mean ..., std ...".</summary>
    static string Describe(DataConfig c, Data.Transforms.Normalization normalization)
    {
        var geometry = c.Name == DataSources.ImageFolderName
            ? $"shorter side resized to {c.ResizeSize} px, the central {c.ImageSize}x{c.ImageSize}{(c.TenCrop ? " (10 crops, logits averaged)" : "")}"
            : $"shorter side resized to {Data.Cifar.CifarFormat.Side} px, the central {Data.Cifar.CifarFormat.Side}x{Data.Cifar.CifarFormat.Side} (as the CIFAR images the model saw)";
        return $"{geometry}; {normalization.Describe()}";
    }
}
