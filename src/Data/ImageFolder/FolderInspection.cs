namespace Trainer.Data.ImageFolder;

/// <summary>Image counts of one class in one split.</summary>
public sealed record ClassCount(string Name, string DisplayName, int Images);

/// <summary>One split of an image folder: its classes, their counts, and the spread of image sizes.</summary>
public sealed record SplitInspection(string Split, string Path, int Images, IReadOnlyList<ClassCount> Classes,
    int MinWidth, int MedianWidth, int MaxWidth, int MinHeight, int MedianHeight, int MaxHeight);

/// <summary>`trainer data inspect`: what an image folder holds, read from file headers only.</summary>
public static class FolderInspection
{
    public static IReadOnlyList<SplitInspection> Inspect(string root, int workers = 2)
    {
        if (!Directory.Exists(root)) throw new BadInputException($"image folder {root} does not exist");
        var splits = new[] { "train", "val", "test" }.Where(s => Directory.Exists(System.IO.Path.Combine(root, s))).ToList();
        var folders = splits.Count > 0 ? splits.Select(s => (s, System.IO.Path.Combine(root, s))).ToList() : [("all", root)];
        var result = new List<SplitInspection>();
        foreach (var (split, dir) in folders)
        {
            var classes = ImageFolderSet.ClassFolders(dir);
            var set = ImageFolderSet.LoadSplit(dir, classes, ImageFolderSet.NamesFor(root, classes));
            var sizes = new (int W, int H)[set.Count];
            Parallel.For(0, set.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers) }, i => sizes[i] = ImageDecoder.ReadSize(set.Files[i]));
            var widths = sizes.Select(s => s.W).Order().ToArray();
            var heights = sizes.Select(s => s.H).Order().ToArray();
            var counts = classes.Select((c, label) => new ClassCount(c, set.DisplayNames[label], set.Labels.Count(l => l == label))).ToList();
            result.Add(new SplitInspection(split, dir, set.Count, counts,
                widths[0], widths[widths.Length / 2], widths[^1], heights[0], heights[heights.Length / 2], heights[^1]));
        }
        return result;
    }
}
