using TorchSharp;
using static TorchSharp.torch;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Runs;

/// <summary>`trainer eval`: a checkpoint's model on its data set's test split (or the same split under another root).</summary>
public static class CheckpointEvaluation
{
    /// <summary>Evaluates the checkpoint; <paramref name="batchEnded"/> sees each batch's logits and labels (see <see cref="Evaluator.Evaluate"/>).</summary>
    public static EvalResult Run(string checkpointPath, string? dataRoot, string? device, int batchSize = 256, bool tenCrop = false, Action<Tensor, Tensor>? batchEnded = null)
    {
        using var loaded = CheckpointModel.Load(checkpointPath, device);
        var (model, config, meta, target) = (loaded.Model, loaded.Config, loaded.Meta, loaded.Device);
        var test = DataSources.LoadTest(config.Data, dataRoot, config.Seed, meta.Classes);
        if (test.Classes.Count != meta.NumClasses)
            throw new Data.BadInputException($"{test.Source} has {test.Classes.Count} classes, the checkpoint's model has {meta.NumClasses}");
        if (tenCrop && !DataSources.ReadsAsImageFolder(config.Data))
            throw new Data.BadInputException($"--ten-crop applies to image-folder runs; {checkpointPath} was trained on {config.Data.Name}");
        var dataConfig = tenCrop ? config.Data with { TenCrop = true } : config.Data;
        var loader = DataSources.EvalLoader(dataConfig, test, meta.Normalization, batchSize, pinMemory: target.type == DeviceType.CUDA);
        return Evaluator.Evaluate(model, loader, target, config.Train.ChannelsLast, batchEnded);
    }
}
