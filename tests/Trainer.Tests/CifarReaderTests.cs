using Trainer.Data;
using Trainer.Data.Cifar;
using Xunit;

namespace Trainer.Tests;

public class CifarReaderTests
{
    static ImageDataset Random(int count, int classes, int seed)
    {
        var rng = new System.Random(seed);
        var pixels = new byte[count * CifarFormat.ImageBytes];
        rng.NextBytes(pixels);
        var labels = Enumerable.Range(0, count).Select(_ => rng.Next(classes)).ToArray();
        return new ImageDataset(pixels, labels, 3, 32, 32, [], "random");
    }

    [Theory]
    [InlineData("cifar10", 10, 7)]
    [InlineData("cifar100", 100, 13)]
    public void Records_written_in_the_official_layout_read_back_identically(string name, int classes, int count)
    {
        var format = CifarFormat.ByName(name);
        var original = Random(count, classes, 42);
        using var stream = new MemoryStream();
        CifarReader.WriteRecords(format, original, stream);
        Assert.Equal(count * format.RecordBytes, stream.Length);

        var (pixels, labels) = CifarReader.ReadRecords(format, stream.ToArray(), "memory");
        Assert.Equal(original.Pixels, pixels);
        Assert.Equal(original.Labels, labels);
    }

    [Fact]
    public void Cifar100_records_carry_coarse_then_fine_label_and_the_fine_one_is_used()
    {
        var record = new byte[CifarFormat.Cifar100.RecordBytes];
        record[0] = 3;   // coarse
        record[1] = 77;  // fine
        record[2] = 200; // first red pixel
        var (pixels, labels) = CifarReader.ReadRecords(CifarFormat.Cifar100, record, "one");
        Assert.Equal(77, labels[0]);
        Assert.Equal(200, pixels[0]);
    }

    [Fact]
    public void A_file_that_is_not_a_whole_number_of_records_is_bad_input_naming_file_and_sizes()
    {
        using var dir = new TempDir();
        var folder = Directory.CreateDirectory(dir["cifar-10-batches-bin"]).FullName;
        File.WriteAllBytes(Path.Combine(folder, "data_batch_1.bin"), new byte[3073 * 2 + 100]);
        File.WriteAllBytes(Path.Combine(folder, "test_batch.bin"), new byte[3073]);

        var e = Assert.Throws<BadInputException>(() => CifarFolder.LoadTrain(CifarFormat.Cifar10, dir.Path));
        Assert.Contains("data_batch_1.bin", e.Message);
        Assert.Contains("6246 bytes", e.Message);
        Assert.Contains("3073 bytes", e.Message);
        Assert.Contains("100 bytes left over", e.Message);
    }

    [Fact]
    public void A_label_beyond_the_class_count_is_bad_input()
    {
        var record = new byte[CifarFormat.Cifar10.RecordBytes];
        record[0] = 12;
        var e = Assert.Throws<BadInputException>(() => CifarReader.ReadRecords(CifarFormat.Cifar10, record, "x.bin"));
        Assert.Contains("label 12", e.Message);
    }

    [Fact]
    public void A_missing_folder_says_where_to_put_the_files()
    {
        var e = Assert.Throws<BadInputException>(() => CifarFolder.LoadTrain(CifarFormat.Cifar10, "/nonexistent/cifar"));
        Assert.Contains("cifar-10-batches-bin", e.Message);
        Assert.Contains("data_batch_1.bin", e.Message);
    }

    [Fact]
    public void Reads_the_real_shared_cifar10_files_with_official_labels_and_class_names()
    {
        var train = CifarFolder.LoadTrain(CifarFormat.Cifar10, TestPaths.SharedCifar10);
        var test = CifarFolder.LoadTest(CifarFormat.Cifar10, TestPaths.SharedCifar10);
        Assert.Equal(10_000, train.Count);
        Assert.Equal(10_000, test.Count);
        Assert.Equal("airplane", train.Classes[0]);
        Assert.Equal("truck", train.Classes[9]);
        // The first official training labels (see provenance.tsv): frog, truck, truck, deer, automobile.
        Assert.Equal([6, 9, 9, 4, 1], train.Labels.Take(5));
        Assert.All(Enumerable.Range(0, 10), c => Assert.InRange(train.Labels.Count(l => l == c), 800, 1200));
    }

    [Fact]
    public void The_embedded_sample_is_the_first_lossless_records_of_the_official_files()
    {
        var sample = CifarSample.LoadTrain();
        var sampleTest = CifarSample.LoadTest();
        Assert.Equal(3000, sample.Count);
        Assert.Equal(1000, sampleTest.Count);
        var official = CifarFolder.LoadTrain(CifarFormat.Cifar10, TestPaths.SharedCifar10);
        Assert.Equal(official.Pixels.AsSpan(0, sample.Pixels.Length).ToArray(), sample.Pixels);
        Assert.Equal(official.Labels.Take(3000), sample.Labels);
    }
}

public class ValidationSplitTests
{
    [Fact]
    public void A_carved_validation_split_is_seeded_disjoint_and_leaves_the_test_set_for_the_end()
    {
        var config = new Trainer.Recipes.Config.DataConfig { Name = "cifar10-sample", ValSplit = 500 };
        var a = Trainer.Recipes.Runs.DataSources.Load(config, seed: 1);
        var b = Trainer.Recipes.Runs.DataSources.Load(config, seed: 1);
        var c = Trainer.Recipes.Runs.DataSources.Load(config, seed: 2);
        Assert.Equal(2500, a.Train.Count);
        Assert.Equal(500, a.Validation.Count);
        Assert.NotNull(a.Test);
        Assert.Equal(1000, a.Test!.Count);
        static byte[] Pixels(Trainer.Data.ILabelledImages d) => ((ImageDataset)d).Pixels;
        Assert.Equal(Pixels(a.Validation), Pixels(b.Validation));
        Assert.NotEqual(Pixels(a.Validation), Pixels(c.Validation));
        // Every training image lands in exactly one side: the label histograms add up.
        var all = Trainer.Data.Cifar.CifarSample.LoadTrain();
        for (int k = 0; k < 10; k++)
            Assert.Equal(all.Labels.Count(l => l == k), ((ImageDataset)a.Train).Labels.Count(l => l == k) + ((ImageDataset)a.Validation).Labels.Count(l => l == k));
    }
}
