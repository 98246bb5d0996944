namespace Trainer.Data.ImageFolder;

/// <summary>An image file found under a folder: its path relative to that folder ('/' separators) and its full path.</summary>
public sealed record ImageFile(string Relative, string Path);

/// <summary>
/// Every image under a folder, at any depth, for `trainer predict`: files ending in .jpg, .jpeg,
/// .png, .bmp, .gif or .webp (any letter case), sorted by relative path (code-point order, '/'
/// separators, so the order is the same on every system). Hidden files and folders (a leading
/// '.', such as macOS's "._photo.jpg") are left out, and links to folders are not followed (as
/// find does not), so a link back up the tree cannot loop.
/// </summary>
internal static class ImageFiles
{
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    public static IReadOnlyList<ImageFile> Find(string dir)
    {
        if (File.Exists(dir)) throw new BadInputException($"{dir} is a file; give the folder that holds the images");
        if (!Directory.Exists(dir)) throw new BadInputException($"image folder {dir} does not exist");
        var found = new List<ImageFile>();
        Collect(dir, "", found);
        if (found.Count == 0) throw new BadInputException($"image folder {dir} holds no images ({string.Join(", ", Extensions)}, in any subfolder)");
        found.Sort((a, b) => string.CompareOrdinal(a.Relative, b.Relative));
        return found;
    }

    static void Collect(string dir, string prefix, List<ImageFile> found)
    {
        IEnumerable<string> files, folders;
        try
        {
            files = Directory.GetFiles(dir);
            folders = Directory.GetDirectories(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"cannot list image folder {dir}: {e.Message}");
        }
        foreach (var file in files)
        {
            var name = System.IO.Path.GetFileName(file);
            if (!name.StartsWith('.') && Extensions.Contains(System.IO.Path.GetExtension(name).ToLowerInvariant()))
                found.Add(new ImageFile(prefix + name, file));
        }
        foreach (var folder in folders)
        {
            var name = System.IO.Path.GetFileName(folder);
            if (!name.StartsWith('.') && new DirectoryInfo(folder).LinkTarget is null) Collect(folder, prefix + name + "/", found);
        }
    }
}
