using Trainer.Data;
using Trainer.Data.Cifar;
using Trainer.Data.ImageFolder;
using Trainer.Data.Loading;
using Trainer.Data.Transforms;
using Trainer.Recipes.Config;

namespace Trainer.Recipes.Runs;

/// <summary>The images of a run: what it trains on, validates on each epoch, and (with a carved validation split) tests on at the end.</summary>
public sealed record RunData(ILabelledImages Train, ILabelledImages Validation, ILabelledImages? Test, int SkippedImages = 0)
{
    public IReadOnlyList<string> Classes => Train.Classes;
    /// <summary>Readable class names: an image folder's from its names file (as `data inspect` shows them), otherwise the classes themselves.</summary>
    public IReadOnlyList<string> ClassNames => Train is ImageFolderSet folder ? folder.DisplayNames : Train.Classes;
}

/// <summary>config.data -> data sets, their normalisation and loaders (CIFAR in memory or an image folder on disk).</summary>
internal static class DataSources
{
    /// <summary>Image files through the image-folder transforms (image_size, resize_size): an image folder, or data given in code, which predictions read as files too.</summary>
    public static bool ReadsAsImageFolder(DataConfig c) => c.Name is DataConfig.ImageFolder or DataConfig.Own;

    public static RunData Load(DataConfig c, long seed)
    {
        if (c.Name == DataConfig.Own) throw OwnData(c);
        if (c.Name == DataConfig.ImageFolder) return LoadImageFolder(c, seed);
        var (train, test) = c.Name == CifarSample.Name
            ? (CifarSample.LoadTrain(), CifarSample.LoadTest())
            : (CifarFolder.LoadTrain(CifarFormat.ByName(c.Name), c.Root), CifarFolder.LoadTest(CifarFormat.ByName(c.Name), c.Root));
        if (c.Subset > 0 && c.Subset < train.Count) train = train.Subset(Enumerable.Range(0, c.Subset).ToList());
        if (c.ValSplit == 0) return new RunData(train, c.ValSubset > 0 && c.ValSubset < test.Count ? test.Subset(Spread(test.Count, c.ValSubset)) : test, null);
        var (kept, validation) = train.Split(c.ValSplit, (ulong)seed);
        if (c.ValSubset > 0 && c.ValSubset < validation.Count) validation = validation.Subset(Spread(validation.Count, c.ValSubset));
        return new RunData(kept, validation, test);
    }

    static RunData LoadImageFolder(DataConfig c, long seed)
    {
        var (train, val) = ImageFolderSet.Load(c.Root, FolderOptions(c, seed));
        if (c.Subset > 0 && c.Subset < train.Count) train = train.Subset(Enumerable.Range(0, c.Subset), train.Source);
        if (c.ValSubset > 0 && c.ValSubset < val.Count) val = val.Subset(Spread(val.Count, c.ValSubset), val.Source);
        int skipped = 0;
        if (c.SkipBadImages)
        {
            (train, int a) = ImageCheck.KeepReadable(train, c.WorkerThreads(gpu: false));
            (val, int b) = ImageCheck.KeepReadable(val, c.WorkerThreads(gpu: false));
            skipped = a + b;
        }
        return new RunData(train, val, null, skipped);
    }

    /// <summary><paramref name="n"/> indices spread evenly over <paramref name="count"/> (so a class-sorted set keeps every class).</summary>
    static List<int> Spread(int count, int n) => Enumerable.Range(0, n).Select(i => (int)((long)i * count / n)).ToList();

    static ImageFolderOptions FolderOptions(DataConfig c, long seed) => new()
    {
        Classes = c.Classes, FirstClasses = c.NumClasses, PerClass = c.PerClass, ValFraction = c.ValFraction,
        Seed = (ulong)seed, ClassNamesFile = c.ClassNames,
    };

    /// <summary>How inputs are centred: measured on CIFAR's training images (or its mean image), ImageNet's statistics for image folders.</summary>
    public static Normalization Normalization(DataConfig c, ILabelledImages train) => train switch
    {
        ImageDataset cifar => Data.Transforms.Normalization.Measure(cifar, c.Normalize),
        _ => Data.Transforms.Normalization.ImageNet,
    };

    /// <summary>The held-out images a checkpoint is evaluated on: the test split of its data set (an image folder's validation split), optionally from another root.</summary>
    public static ILabelledImages LoadTest(DataConfig c, string? rootOverride, long seed, IReadOnlyList<string> classes)
    {
        if (c.Name == DataConfig.Own && rootOverride is null) throw OwnData(c);
        if (ReadsAsImageFolder(c))
        {
            var root = rootOverride ?? c.Root;
            var valDir = Path.Combine(root, "val");
            return Directory.Exists(valDir)
                ? ImageFolderSet.LoadSplit(valDir, classes)
                : ImageFolderSet.Load(root, FolderOptions(c, seed) with { Classes = classes.ToArray(), FirstClasses = 0 }).Validation;
        }
        if (c.Name == CifarSample.Name && rootOverride is null) return CifarSample.LoadTest();
        var name = c.Name == CifarSample.Name ? "cifar10" : c.Name;
        return CifarFolder.LoadTest(CifarFormat.ByName(name), rootOverride ?? c.Root);
    }

    /// <summary>
    /// Unlabelled image files in the form the run's evaluation loader takes: an image folder run
    /// reads them through its own evaluation transform; a CIFAR run gets them resized to CIFAR's
    /// 32x32 (<see cref="ResizedImages"/>), then normalised as its test images are.
    /// </summary>
    public static ILabelledImages Unlabelled(DataConfig c, IReadOnlyList<string> files, IReadOnlyList<string> classes, string source) =>
        ReadsAsImageFolder(c)
            ? ImageFolderSet.Unlabelled(files, classes, source)
            : ResizedImages.Load(files, CifarFormat.Side, classes, source, c.WorkerThreads(gpu: false));

    /// <summary>The side of the square images evaluation feeds the model: an image folder's crop, CIFAR's 32.</summary>
    public static int EvalSide(DataConfig c) => ReadsAsImageFolder(c) ? c.ImageSize : CifarFormat.Side;

    static BadInputException OwnData(DataConfig c) =>
        new($"data.name own: the run trained on data given in code (Training.Data: {c.Root}); give that data again from code, or an image folder with --data");

    public static ImageTransform Transform(DataConfig c, bool train) => new()
    {
        Train = train && c.Augment, Size = c.ImageSize, ResizeSize = c.ResizeSize,
        Crop = c.TrainCrop, ScaleMin = c.Scale[0], ScaleMax = c.Scale[1], RatioMin = c.Ratio[0], RatioMax = c.Ratio[1],
        ShortSideMin = c.ShortSide[0], ShortSideMax = c.ShortSide[1], Flip = c.Flip,
        Color = new ColorAugmentation(c.ColorJitter, c.Lighting), TenCrop = !train && c.TenCrop,
    };

    static ISampleSource Source(DataConfig c, ILabelledImages images, Normalization normalization, bool train) => images switch
    {
        ImageDataset cifar => new CifarSource(cifar, new CifarAugmentation(Train: train && c.Augment, Padding: c.Padding), normalization),
        ImageFolderSet folder => new ImageFolderSource(folder, Transform(c, train), normalization, c.Cache,
            c.Cache == DecodeCache.Disk ? (c.CacheDir.Length > 0 ? c.CacheDir : Path.Combine("runs", ".cache", "images")) : null),
        IEncodedImages encoded => new ImageFolderSource(encoded, Transform(c, train), normalization, c.Cache),
        _ => throw new BadInputException($"{images.Source}: a run reads an ImageDataset (decoded, in memory), an image folder or an IEncodedImages; {images.GetType().Name} is none of them"),
    };

    /// <summary>
    /// Training batches (for a GPU, <paramref name="pinMemory"/>: page-locked uint8 pixels finished on
    /// the GPU, and more loader threads); in a job of <paramref name="ranks"/> ranks, this rank's share of each global
    /// batch. An epoch's last batch is dropped there when it has fewer than 2 images a rank (a rank
    /// would get none, or BatchNorm one image).
    /// </summary>
    public static BatchLoader TrainLoader(RunConfig c, ILabelledImages train, Normalization normalization, bool pinMemory = false, int rank = 0, int ranks = 1)
    {
        int rest = train.Count % c.Train.BatchSize;
        bool dropLast = c.Data.DropLast || (ranks > 1 && rest > 0 && rest < 2 * ranks);
        return new(Source(c.Data, train, normalization, train: true), c.Train.BatchSize, shuffle: true, seed: (ulong)c.Seed,
            workers: c.Data.WorkerThreads(gpu: pinMemory), prefetch: c.Data.Prefetch, dropLast: dropLast, pinMemory: pinMemory, rank: rank, ranks: ranks,
            finishOnDevice: pinMemory);
    }

    /// <summary>
    /// Evaluation batches; with the 10-crop test, batchSize counts views (images through the network), so memory stays that of single-crop evaluation.
    /// In a job of <paramref name="ranks"/> ranks, this rank's share of each batch (the evaluator sums the ranks' results).
    /// </summary>
    public static BatchLoader EvalLoader(DataConfig c, ILabelledImages data, Normalization normalization, int batchSize, bool pinMemory = false, int rank = 0, int ranks = 1)
    {
        var source = Source(c, data, normalization, train: false);
        int samples = Math.Max(1, batchSize / source.Layout.Views);
        return new(source, samples, shuffle: false, seed: 0, workers: c.WorkerThreads(gpu: pinMemory), prefetch: c.Prefetch, pinMemory: pinMemory, rank: rank, ranks: ranks,
            finishOnDevice: pinMemory);
    }
}
