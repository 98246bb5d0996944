namespace Trainer.Data.Cifar;

/// <summary>
/// Finds the CIFAR record files under a data root. The root may be the extracted folder itself
/// (cifar-10-batches-bin) or the folder that holds it, as torchvision's root does.
/// </summary>
public static class CifarFolder
{
    public static ImageDataset LoadTrain(CifarFormat format, string root) => Load(format, root, format.TrainFiles, "training");

    public static ImageDataset LoadTest(CifarFormat format, string root) => Load(format, root, format.TestFiles, "test");

    /// <summary>The line a user needs when files are missing: where to put them and in which layout.</summary>
    public static string LayoutHint(CifarFormat format, string root, bool suggestDownload = true) =>
        $"put the official binary files in {Path.Combine(root, format.FolderName)}/ " +
        $"({string.Join(", ", format.TrainFiles.Concat(format.TestFiles))})" +
        (suggestDownload ? $", or run 'trainer data download {format.Name} --dir {root}'" : "");

    static ImageDataset Load(CifarFormat format, string root, string[] names, string split)
    {
        var folder = ResolveFolder(format, root);
        // Any subset of the training batches is accepted (a partial copy is still real data).
        var present = names.Select(n => Path.Combine(folder, n)).Where(File.Exists).ToList();
        if (present.Count == 0)
            throw new BadInputException($"no {format.Name} {split} files in {folder}: {LayoutHint(format, root)}");
        return CifarReader.ReadFiles(format, present, ReadClassNames(format, folder));
    }

    static string ResolveFolder(CifarFormat format, string root)
    {
        if (!Directory.Exists(root))
            throw new BadInputException($"data folder {root} does not exist: {LayoutHint(format, root)}");
        var nested = Path.Combine(root, format.FolderName);
        return Directory.Exists(nested) ? nested : root;
    }

    static IReadOnlyList<string> ReadClassNames(CifarFormat format, string folder)
    {
        var meta = Path.Combine(folder, format.MetaFile);
        var names = File.Exists(meta)
            ? File.ReadAllLines(meta).Select(l => l.Trim()).Where(l => l.Length > 0).ToList()
            : [];
        return names.Count == format.NumClasses ? names : Enumerable.Range(0, format.NumClasses).Select(i => $"class_{i}").ToList();
    }
}
