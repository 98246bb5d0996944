using Trainer.Data;
using Trainer.Data.Transforms;
using Trainer.Models;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Config;
using Trainer.Recipes.Runs;
using static TorchSharp.torch;

namespace Trainer.Recipes.Weights;

/// <summary>What `trainer import` wrote.</summary>
public sealed record ImportResult(string Model, int NumClasses, int Tensors, string Source, Normalization Normalization)
{
    public bool FeaturesOnly => NumClasses == 0;
}

/// <summary>
/// `trainer import` and `trainer export`: weights from PyTorch, safetensors, ONNX or another
/// run into a checkpoint of a registered model, checked strictly against it; and a checkpoint's
/// weights out as a state_dict PyTorch loads strictly into the same (torchvision) model.
/// </summary>
public static class WeightsTransfer
{
    /// <summary>
    /// Reads <paramref name="from"/>, checks every tensor against <paramref name="modelName"/>, and
    /// writes a checkpoint. Weights without a classifier (feature extractors such as the ONNX
    /// ResNet-18) give a features-only checkpoint (0 classes) for init.weights to start from.
    /// </summary>
    public static ImportResult Import(string from, string? modelName, string outPath)
    {
        if (modelName is not null && !ModelRegistry.Contains(modelName)) throw new BadInputException(ModelRegistry.UnknownMessage(modelName));
        using var source = WeightsFile.Read(from);
        modelName ??= source.Model ?? throw new BadInputException($"{from} does not say which model its weights belong to: give --model NAME");
        if (source.Model is { } trained && trained != modelName)
            throw new BadInputException($"{from} holds weights of {trained}, not {modelName}");
        if (source.ConfigYaml is { } runConfig) return ImportRun(source, runConfig, outPath);
        var entry = ModelRegistry.Get(modelName);
        using var probe = entry.Create();
        var headPrefix = WeightsFit.HeadPrefixes(probe)[0];
        bool hasHead = source.Tensors.Keys.Any(k => k.StartsWith(headPrefix, StringComparison.Ordinal));
        int classes = hasHead && source.Tensors.TryGetValue(headPrefix + "weight", out var headWeight) ? (int)headWeight.shape[0] : entry.DefaultClasses;
        using var model = entry.Create(new ModelOptions(NumClasses: classes));
        int loaded = WeightsFit.Load(model, source.Tensors, hasHead ? [] : [WeightsFit.HeadToken], from, modelName);
        var skip = hasHead ? [] : WeightsFit.HeadPrefixes(model);
        var tensors = StateDictOrder.Entries(model)
            .Where(e => !skip.Any(p => e.Name.StartsWith(p, StringComparison.Ordinal)))
            .ToDictionary(e => e.Name, e => e.Tensor.detach().clone());
        var normalization = source.Normalization ?? Normalization.ImageNet;
        int numClasses = hasHead ? classes : 0;
        var classNames = source.Classes?.ToArray() ?? Enumerable.Range(0, numClasses).Select(i => i.ToString()).ToArray();
        using var checkpoint = new Checkpoint
        {
            Meta = new CheckpointMeta
            {
                Model = modelName, NumClasses = numClasses, ConfigYaml = ConfigWriter.ToYaml(ImportedConfig(entry)),
                Epoch = 0, Step = 0, ScheduleState = new(), Metrics = new(), BestTop1 = -1, BestEpoch = 0,
                NormalizationMode = normalization.Mode, NormalizationMean = normalization.Mean, NormalizationStd = normalization.Std,
                NormalizationBgr = normalization.Bgr, NormalizationScale = normalization.Scale,
                Classes = classNames, ImportedFrom = source.Describe(),
            },
            Model = tensors, Optimizer = new(), Rng = new(),
        };
        checkpoint.Save(outPath);
        return new ImportResult(modelName, numClasses, loaded, source.Describe(), normalization);
    }

    /// <summary>
    /// Weights that come with their run's config (an ONNX model `trainer export` wrote): the model
    /// is rebuilt from that config (its head and options), every key checked strictly, and the
    /// checkpoint keeps the config, classes and normalisation, so eval and predict see the run.
    /// </summary>
    static ImportResult ImportRun(WeightsSource source, string configYaml, string outPath)
    {
        var config = ConfigLoader.FromYaml(configYaml, $"{source.Path} (the config in its metadata)");
        var classes = source.Classes?.ToArray() ?? [];
        using var model = RunModel.Create(config with { Model = source.Model! }, classes.Length);
        int loaded = WeightsFit.Load(model, source.Tensors, [], source.Path, source.Model!);
        var tensors = StateDictOrder.Entries(model).ToDictionary(e => e.Name, e => e.Tensor.detach().clone());
        var normalization = source.Normalization ?? Normalization.ImageNet;
        using var checkpoint = new Checkpoint
        {
            Meta = new CheckpointMeta
            {
                Model = source.Model!, NumClasses = classes.Length, ConfigYaml = configYaml,
                Epoch = 0, Step = 0, ScheduleState = new(), Metrics = new(), BestTop1 = -1, BestEpoch = 0,
                NormalizationMode = normalization.Mode, NormalizationMean = normalization.Mean, NormalizationStd = normalization.Std,
                NormalizationBgr = normalization.Bgr, NormalizationScale = normalization.Scale,
                Classes = classes, ClassNames = source.ClassNames?.ToArray(), ImportedFrom = source.Describe(),
            },
            Model = tensors, Optimizer = new(), Rng = new(),
        };
        checkpoint.Save(outPath);
        return new ImportResult(source.Model!, classes.Length, loaded, source.Describe(), normalization);
    }

    /// <summary>
    /// The config an imported checkpoint carries: the model, and the evaluation transform of its
    /// native data (ImageNet-sized models: resize 256, centre crop 224), which eval and predict use.
    /// </summary>
    static RunConfig ImportedConfig(ModelEntry entry) => new()
    {
        Model = entry.Name,
        Data = entry.Dataset == "cifar" ? new DataConfig { Name = "cifar10-sample" } : new DataConfig { Name = "imagefolder", Root = "." },
    };

    /// <summary>
    /// Writes a checkpoint's model weights to <paramref name="outPath"/>: a PyTorch state_dict
    /// (zip format, PyTorch's key order) or, for a .safetensors name, safetensors. Returns the tensor count.
    /// </summary>
    public static int Export(string checkpointPath, string outPath)
    {
        using var checkpoint = Checkpoint.Load(checkpointPath);
        var config = ConfigLoader.FromYaml(checkpoint.Meta.ConfigYaml, $"{checkpointPath} (its saved config)");
        int classes = checkpoint.Meta.NumClasses > 0 ? checkpoint.Meta.NumClasses : ModelRegistry.Get(checkpoint.Meta.Model).DefaultClasses;
        using var model = RunModel.Create(config with { Model = checkpoint.Meta.Model }, classes);
        // PyTorch's order where the model has the key, then anything else the checkpoint holds.
        var order = StateDictOrder.Keys(model).Where(checkpoint.Model.ContainsKey).ToList();
        order.AddRange(checkpoint.Model.Keys.Except(order).OrderBy(k => k, StringComparer.Ordinal));
        var entries = order.Select(k => (k, checkpoint.Model[k])).ToList();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        if (outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            Storage.DurableFile.Write(outPath, file => SafeTensors.Write(file, entries.Select(e => new KeyValuePair<string, Tensor>(e.k, e.Item2))));
        else PyTorchFormat.Write(outPath, entries);
        return entries.Count;
    }
}
