using System.Reflection;

namespace Trainer.Data.Cifar;

/// <summary>The small real CIFAR-10 sample compiled into this assembly (data/cifar10-sample).</summary>
internal static class CifarSample
{
    public const string Name = "cifar10-sample";

    public static ImageDataset LoadTrain() => Load("data_batch_1.bin");

    public static ImageDataset LoadTest() => Load("test_batch.bin");

    static ImageDataset Load(string file)
    {
        var bytes = Resource(file);
        var classes = System.Text.Encoding.ASCII.GetString(Resource("batches.meta.txt"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var (pixels, labels) = CifarReader.ReadRecords(CifarFormat.Cifar10, bytes, $"{Name}/{file}");
        return new ImageDataset(pixels, labels, 3, 32, 32, classes, $"{Name}/{file} (embedded)");
    }

    static byte[] Resource(string file)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"{Name}/{file}")
            ?? throw new InvalidOperationException($"embedded resource {Name}/{file} is missing from the build");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }
}
