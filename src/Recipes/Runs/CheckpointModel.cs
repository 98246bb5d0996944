using TorchSharp;
using static TorchSharp.torch;
using Trainer.Models;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Config;

namespace Trainer.Recipes.Runs;

/// <summary>
/// A checkpoint's model rebuilt from its saved config with its weights loaded, on a device: what
/// `trainer eval` and `trainer predict` start from. The checkpoint's tensors are freed once copied.
/// </summary>
internal sealed class CheckpointModel : IDisposable
{
    CheckpointModel(ClassifierModel model, RunConfig config, CheckpointMeta meta, Device device)
    {
        Model = model; Config = config; Meta = meta; Device = device;
    }

    public ClassifierModel Model { get; }
    /// <summary>The run's resolved config, as the checkpoint saved it.</summary>
    public RunConfig Config { get; }
    public CheckpointMeta Meta { get; }
    public Device Device { get; }

    /// <summary>Loads <paramref name="path"/>; <paramref name="device"/> overrides the config's device (auto, cpu, cuda).</summary>
    public static CheckpointModel Load(string path, string? device)
    {
        using var checkpoint = Checkpoint.Load(path);
        var config = ConfigLoader.FromYaml(checkpoint.Meta.ConfigYaml, $"{path} (its saved config)");
        if (checkpoint.Meta.NumClasses == 0)
            throw new Data.BadInputException($"{path} holds features only (imported without a classifier): fine-tune it first (init.weights)");
        var model = RunModel.Create(config, checkpoint.Meta.NumClasses);
        try
        {
            SessionCheckpoint.LoadModel(model, checkpoint, path);
            var target = Devices.Select(device ?? config.Device);
            model.to(target);
            model.eval();
            return new CheckpointModel(model, config, checkpoint.Meta, target);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public void Dispose() => Model.Dispose();
}
