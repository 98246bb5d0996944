namespace Trainer.Data.ImageFolder;

/// <summary>Which classes and images of an image folder a run uses.</summary>
public sealed record ImageFolderOptions
{
    /// <summary>Keep only these classes (folder names, or display names from the class-name file), in sorted order.</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];
    /// <summary>Keep only the first K classes in sorted order (0: all).</summary>
    public int FirstClasses { get; init; }
    /// <summary>At most N images per class, the first in sorted order (0: all).</summary>
    public int PerClass { get; init; }
    /// <summary>Share of each class held out for validation when the folder has no val split.</summary>
    public double ValFraction { get; init; } = 0.1;
    /// <summary>Seed of that validation split.</summary>
    public ulong Seed { get; init; }
    /// <summary>A "folder-name TAB display-name" file; empty: classes.txt in the root when present.</summary>
    public string ClassNamesFile { get; init; } = "";
}

/// <summary>
/// Images in class folders, torchvision's ImageFolder layout: <c>root/&lt;split&gt;/&lt;class&gt;/**/*.jpg|jpeg|png</c>
/// (any letter case). Classes are the class folder names sorted by code point (as Python sorts
/// them, so labels equal torchvision's); files are sorted the same way within a class.
/// </summary>
public sealed class ImageFolderSet : ILabelledImages
{
    static readonly string[] Extensions = [".jpg", ".jpeg", ".png"];

    ImageFolderSet(string[] files, int[] labels, IReadOnlyList<string> classes, IReadOnlyList<string> displayNames, string source)
    {
        Files = files; Labels = labels; Classes = classes; DisplayNames = displayNames; Source = source;
    }

    public string[] Files { get; }
    public int[] Labels { get; }
    /// <summary>Class folder names (wnids for ImageNet subsets), in label order.</summary>
    public IReadOnlyList<string> Classes { get; }
    /// <summary>Readable class names from the class-name file, or the folder names.</summary>
    public IReadOnlyList<string> DisplayNames { get; }
    public string Source { get; }
    public int Count => Files.Length;
    public int Label(int index) => Labels[index];

    /// <summary>The same classes, only the given samples.</summary>
    public ImageFolderSet Subset(IEnumerable<int> indices, string source)
    {
        var kept = indices.ToArray();
        return new(kept.Select(i => Files[i]).ToArray(), kept.Select(i => Labels[i]).ToArray(), Classes, DisplayNames, source);
    }

    /// <summary>
    /// The training and validation sets of <paramref name="root"/>: root/train and root/val when
    /// both exist; otherwise the training folder (root/train, or root itself holding the class
    /// folders) with a seeded per-class validation split.
    /// </summary>
    public static (ImageFolderSet Train, ImageFolderSet Validation) Load(string root, ImageFolderOptions options)
    {
        if (string.IsNullOrWhiteSpace(root)) throw new BadInputException("data.root is empty: set it to the image folder (root/train/<class>/*.jpg)");
        if (!Directory.Exists(root)) throw new BadInputException($"image folder {root} does not exist");
        string trainDir = Path.Combine(root, "train"), valDir = Path.Combine(root, "val");
        bool hasTrain = Directory.Exists(trainDir);
        if (!hasTrain) trainDir = root;
        var classes = SelectClasses(ClassFolders(trainDir), options, root);
        var names = NamesFor(root, classes, options.ClassNamesFile);
        var train = Scan(trainDir, classes, names, options.PerClass);
        if (hasTrain && Directory.Exists(valDir))
        {
            var valFolders = ClassFolders(valDir);
            var missing = classes.FirstOrDefault(c => !valFolders.Contains(c));
            if (missing is not null) throw new BadInputException($"class '{missing}' is in {trainDir} but has no folder in {valDir}");
            return (train, Scan(valDir, classes, names, perClass: 0));
        }
        return SplitPerClass(train, options.ValFraction, options.Seed);
    }

    /// <summary>One split folder on its own (for `trainer eval` and `data inspect`): classes as its own subfolders.</summary>
    public static ImageFolderSet LoadSplit(string splitDir, IReadOnlyList<string> classes, IReadOnlyList<string>? displayNames = null)
    {
        if (!Directory.Exists(splitDir)) throw new BadInputException($"image folder {splitDir} does not exist");
        var present = ClassFolders(splitDir);
        var missing = classes.FirstOrDefault(c => !present.Contains(c));
        if (missing is not null) throw new BadInputException($"class '{missing}' has no folder in {splitDir}");
        return Scan(splitDir, classes, displayNames ?? classes, perClass: 0);
    }

    /// <summary>Given files, none labelled (every label 0), read with <paramref name="classes"/> as the class names: images to predict.</summary>
    public static ImageFolderSet Unlabelled(IReadOnlyList<string> files, IReadOnlyList<string> classes, string source) =>
        new(files.ToArray(), new int[files.Count], classes, classes, source);

    /// <summary>Subfolder names of <paramref name="dir"/>, sorted by code point (Python's sort).</summary>
    public static List<string> ClassFolders(string dir)
    {
        var folders = Directory.EnumerateDirectories(dir).Select(d => Path.GetFileName(d)!).Where(n => !n.StartsWith('.')).ToList();
        folders.Sort(StringComparer.Ordinal);
        if (folders.Count == 0) throw new BadInputException($"{dir} holds no class folders (expected {dir}/<class>/*.jpg)");
        return folders;
    }

    public static bool IsImageFile(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    static List<string> SelectClasses(List<string> all, ImageFolderOptions o, string root)
    {
        var chosen = all;
        if (o.Classes.Count > 0)
        {
            var byDisplay = ReadClassNames(ClassNamesPath(root, o.ClassNamesFile));
            chosen = [];
            foreach (var wanted in o.Classes)
            {
                var folder = all.Contains(wanted) ? wanted : byDisplay.FirstOrDefault(kv => kv.Value == wanted && all.Contains(kv.Key)).Key;
                if (folder is null) throw new BadInputException($"data.classes: no class '{wanted}' in {root} (classes: {string.Join(", ", all.Take(10))}{(all.Count > 10 ? ", ..." : "")})");
                chosen.Add(folder);
            }
            chosen = chosen.Distinct().Order(StringComparer.Ordinal).ToList();
        }
        if (o.FirstClasses > 0)
        {
            if (o.FirstClasses > chosen.Count) throw new BadInputException($"data.num_classes is {o.FirstClasses} but {root} has {chosen.Count} classes");
            chosen = chosen.Take(o.FirstClasses).ToList();
        }
        return chosen;
    }

    static string? ClassNamesPath(string root, string file)
    {
        if (file.Length > 0)
            return File.Exists(file) ? file : throw new BadInputException($"data.class_names: {file} does not exist");
        var auto = Path.Combine(root, "classes.txt");
        return File.Exists(auto) ? auto : null;
    }

    /// <summary>Reads "folder TAB name" lines (a single column names nothing).</summary>
    static Dictionary<string, string> ReadClassNames(string? path)
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        if (path is null) return names;
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split('\t', 2, StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && parts[0].Length > 0) names[parts[0]] = parts[1];
        }
        return names;
    }

    /// <summary>Display names of <paramref name="classes"/> from the class-name file (<paramref name="file"/>, or root/classes.txt when present); a class it does not name keeps its folder name.</summary>
    public static IReadOnlyList<string> NamesFor(string root, IReadOnlyList<string> classes, string file = "")
    {
        var names = ReadClassNames(ClassNamesPath(root, file));
        return classes.Select(c => names.TryGetValue(c, out var n) ? n : c).ToList();
    }

    static ImageFolderSet Scan(string dir, IReadOnlyList<string> classes, IReadOnlyList<string> names, int perClass)
    {
        var files = new List<string>();
        var labels = new List<int>();
        for (int label = 0; label < classes.Count; label++)
        {
            var classDir = Path.Combine(dir, classes[label]);
            var images = Directory.EnumerateFiles(classDir, "*", SearchOption.AllDirectories).Where(IsImageFile).ToList();
            images.Sort(StringComparer.Ordinal);
            if (images.Count == 0) throw new BadInputException($"class folder {classDir} holds no .jpg, .jpeg or .png images");
            if (perClass > 0 && images.Count > perClass) images = images.Take(perClass).ToList();
            files.AddRange(images);
            labels.AddRange(Enumerable.Repeat(label, images.Count));
        }
        return new ImageFolderSet(files.ToArray(), labels.ToArray(), classes, names, dir);
    }

    /// <summary>Holds out round(fraction x n) images of every class (at least one), chosen by a seeded shuffle.</summary>
    static (ImageFolderSet, ImageFolderSet) SplitPerClass(ImageFolderSet all, double fraction, ulong seed)
    {
        if (fraction <= 0 || fraction >= 1) throw new BadInputException($"data.val_fraction must be between 0 and 1 (exclusive) for {all.Source}, got {fraction}");
        var train = new List<int>();
        var val = new List<int>();
        for (int label = 0; label < all.Classes.Count; label++)
        {
            var members = Enumerable.Range(0, all.Count).Where(i => all.Labels[i] == label).ToArray();
            if (members.Length < 2) throw new BadInputException($"class '{all.Classes[label]}' in {all.Source} has {members.Length} image: too few to hold one out for validation");
            int held = Math.Clamp((int)Math.Round(fraction * members.Length), 1, members.Length - 1);
            var order = new Loading.Rng(seed, 0x7A1, (ulong)label).Permutation(members.Length);
            val.AddRange(order.Take(held).Select(k => members[k]));
            train.AddRange(order.Skip(held).Select(k => members[k]));
        }
        train.Sort();
        val.Sort();
        return (all.Subset(train, all.Source + " (train split)"), all.Subset(val, all.Source + " (validation split)"));
    }
}
