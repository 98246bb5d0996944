using Trainer.Data;
using Trainer.Data.Cifar;
using Trainer.Data.Loading;
using Trainer.Data.Transforms;
using Trainer.Recipes.Config;

namespace Trainer.Recipes.Runs;

/// <summary>The images of a run: what it trains on, validates on each epoch, and (with a carved validation split) tests on at the end.</summary>
public sealed record RunData(ImageDataset Train, ImageDataset Validation, ImageDataset? Test)
{
    public IReadOnlyList<string> Classes => Train.Classes;
}

/// <summary>config.data -> data sets and loaders.</summary>
public static class DataSources
{
    public static RunData Load(DataConfig c, long seed)
    {
        var (train, test) = c.Name == CifarSample.Name
            ? (CifarSample.LoadTrain(), CifarSample.LoadTest())
            : (CifarFolder.LoadTrain(CifarFormat.ByName(c.Name), c.Root), CifarFolder.LoadTest(CifarFormat.ByName(c.Name), c.Root));
        if (c.Subset > 0 && c.Subset < train.Count) train = train.Subset(Enumerable.Range(0, c.Subset).ToList());
        if (c.ValSplit == 0) return new RunData(train, test, null);
        var (kept, validation) = train.Split(c.ValSplit, (ulong)seed);
        return new RunData(kept, validation, test);
    }

    /// <summary>The held-out images a checkpoint is evaluated on: the test split of its data set, optionally from another root.</summary>
    public static ImageDataset LoadTest(DataConfig c, string? rootOverride)
    {
        if (c.Name == CifarSample.Name && rootOverride is null) return CifarSample.LoadTest();
        var name = c.Name == CifarSample.Name ? "cifar10" : c.Name;
        return CifarFolder.LoadTest(CifarFormat.ByName(name), rootOverride ?? c.Root);
    }

    public static BatchLoader TrainLoader(RunConfig c, ImageDataset train, Normalization normalization) =>
        new(train, new CifarAugmentation(normalization, Train: c.Data.Augment, Padding: c.Data.Padding), c.Train.BatchSize, shuffle: true, seed: (ulong)c.Seed);

    public static BatchLoader EvalLoader(ImageDataset data, Normalization normalization, int batchSize) =>
        new(data, new CifarAugmentation(normalization, Train: false), batchSize, shuffle: false, seed: 0);
}
