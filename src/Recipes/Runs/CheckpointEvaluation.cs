using TorchSharp;
using static TorchSharp.torch;
using Trainer.Models;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Runs;

/// <summary>`trainer eval`: a checkpoint's model on its data set's test split (or the same split under another root).</summary>
public static class CheckpointEvaluation
{
    public static EvalResult Run(string checkpointPath, string? dataRoot, string? device, int batchSize = 256, bool tenCrop = false)
    {
        using var checkpoint = Checkpoint.Load(checkpointPath);
        var config = ConfigLoader.FromYaml(checkpoint.Meta.ConfigYaml, $"{checkpointPath} (its saved config)");
        if (checkpoint.Meta.NumClasses == 0)
            throw new Data.BadInputException($"{checkpointPath} holds features only (imported without a classifier): fine-tune it first (init.weights)");
        var model = RunModel.Create(config, checkpoint.Meta.NumClasses);
        SessionCheckpoint.LoadModel(model, checkpoint, checkpointPath);
        var target = Devices.Select(device ?? config.Device);
        model.to(target);
        var test = DataSources.LoadTest(config.Data, dataRoot, config.Seed, checkpoint.Meta.Classes);
        if (test.Classes.Count != checkpoint.Meta.NumClasses)
            throw new Data.BadInputException($"{test.Source} has {test.Classes.Count} classes, the checkpoint's model has {checkpoint.Meta.NumClasses}");
        if (tenCrop && config.Data.Name != DataSources.ImageFolderName)
            throw new Data.BadInputException($"--ten-crop applies to image-folder runs; {checkpointPath} was trained on {config.Data.Name}");
        var dataConfig = tenCrop ? config.Data with { TenCrop = true } : config.Data;
        var loader = DataSources.EvalLoader(dataConfig, test, checkpoint.Meta.Normalization, batchSize, pinMemory: target.type == DeviceType.CUDA);
        return Evaluator.Evaluate(model, loader, target, config.Train.ChannelsLast);
    }
}
