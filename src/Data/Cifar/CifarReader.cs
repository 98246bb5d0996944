namespace Trainer.Data.Cifar;

/// <summary>Reads the official CIFAR-10/100 binary files, any number of records per file.</summary>
internal static class CifarReader
{
    /// <summary>Reads one or more record files of the same format into one dataset, in file order.</summary>
    public static ImageDataset ReadFiles(CifarFormat format, IReadOnlyList<string> paths, IReadOnlyList<string> classes)
    {
        var parts = paths.Select(p => ReadRecords(format, File.ReadAllBytes(p), p)).ToList();
        var pixels = new byte[parts.Sum(p => p.Pixels.Length)];
        var labels = new int[parts.Sum(p => p.Labels.Length)];
        int pixelAt = 0, labelAt = 0;
        foreach (var (px, lb) in parts)
        {
            px.CopyTo(pixels, pixelAt); pixelAt += px.Length;
            lb.CopyTo(labels, labelAt); labelAt += lb.Length;
        }
        return new ImageDataset(pixels, labels, 3, 32, 32, classes, string.Join(", ", paths));
    }

    /// <summary>Splits a record file's bytes into planar pixels and labels; <paramref name="name"/> names it in errors.</summary>
    public static (byte[] Pixels, int[] Labels) ReadRecords(CifarFormat format, byte[] bytes, string name)
    {
        int record = format.RecordBytes;
        if (bytes.Length == 0 || bytes.Length % record != 0)
            throw new BadInputException(
                $"{name}: {bytes.Length} bytes is not a whole number of {format.Name} records of {record} bytes " +
                $"({bytes.Length / record} records and {bytes.Length % record} bytes left over)");
        int count = bytes.Length / record;
        var pixels = new byte[count * CifarFormat.ImageBytes];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int at = i * record;
            int label = bytes[at + format.LabelOffset];
            if (label >= format.NumClasses)
                throw new BadInputException($"{name}: record {i} has label {label}, but {format.Name} has {format.NumClasses} classes");
            labels[i] = label;
            Buffer.BlockCopy(bytes, at + format.LabelBytes, pixels, i * CifarFormat.ImageBytes, CifarFormat.ImageBytes);
        }
        return (pixels, labels);
    }

    /// <summary>Writes records in the official layout (used to cut the shipped sample and by tests).</summary>
    public static void WriteRecords(CifarFormat format, ImageDataset data, Stream output)
    {
        var record = new byte[format.RecordBytes];
        for (int i = 0; i < data.Count; i++)
        {
            Array.Clear(record);
            record[format.LabelOffset] = (byte)data.Labels[i];
            data.Image(i).CopyTo(record.AsSpan(format.LabelBytes));
            output.Write(record);
        }
    }
}
