namespace Trainer.Data.Cifar;

/// <summary>
/// The official CIFAR binary layouts (Krizhevsky 2009): each record is the label byte(s) followed
/// by 3,072 pixel bytes, 1,024 red then green then blue, 32x32 row-major.
/// CIFAR-10: 1 label byte. CIFAR-100: a coarse then a fine label byte (we train on the fine one).
/// </summary>
public sealed record CifarFormat(string Name, int LabelBytes, int LabelOffset, int NumClasses, string FolderName, string[] TrainFiles, string[] TestFiles, string MetaFile)
{
    /// <summary>Width and height of every CIFAR image.</summary>
    public const int Side = 32;
    public const int ImageBytes = 3 * Side * Side;
    public int RecordBytes => LabelBytes + ImageBytes;

    public static readonly CifarFormat Cifar10 = new("cifar10", 1, 0, 10, "cifar-10-batches-bin",
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
        ["test_batch.bin"], "batches.meta.txt");

    public static readonly CifarFormat Cifar100 = new("cifar100", 2, 1, 100, "cifar-100-binary",
        ["train.bin"], ["test.bin"], "fine_label_names.txt");

    public static CifarFormat ByName(string name) => name switch
    {
        "cifar10" => Cifar10,
        "cifar100" => Cifar100,
        _ => throw new BadInputException($"unknown CIFAR variant '{name}' (use cifar10 or cifar100)"),
    };
}
