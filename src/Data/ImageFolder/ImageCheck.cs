namespace Trainer.Data.ImageFolder;

/// <summary>Decodes every image of a set once, in parallel, to find unreadable files before training.</summary>
internal static class ImageCheck
{
    /// <summary>The set without unreadable images, and how many were left out (each named on stderr).</summary>
    public static (ImageFolderSet Kept, int Skipped) KeepReadable(ImageFolderSet set, int workers)
    {
        var bad = new System.Collections.Concurrent.ConcurrentBag<(int Index, string Reason)>();
        Parallel.For(0, set.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers) }, i =>
        {
            try { using var _ = ImageDecoder.Decode(set.Files[i]); }
            catch (BadInputException e) { bad.Add((i, e.Message)); }
        });
        if (bad.IsEmpty) return (set, 0);
        foreach (var (_, reason) in bad.OrderBy(b => b.Index)) Console.Error.WriteLine($"skipping: {reason}");
        var badIndices = bad.Select(b => b.Index).ToHashSet();
        return (set.Subset(Enumerable.Range(0, set.Count).Where(i => !badIndices.Contains(i)), set.Source), bad.Count);
    }
}
