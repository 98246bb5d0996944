using Trainer.Data;
using Trainer.Data.Loading;
using Trainer.Data.Transforms;
using Xunit;

namespace Trainer.Tests;

public class AugmentationTests
{
    /// <summary>n copies of one image whose every pixel value encodes its row and column.</summary>
    static ImageDataset Copies(int n)
    {
        var image = new byte[3 * 32 * 32];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    image[c * 1024 + y * 32 + x] = (byte)(1 + (y * 32 + x) % 250);
        var pixels = Enumerable.Range(0, n).SelectMany(_ => image).ToArray();
        return new ImageDataset(pixels, new int[n], 3, 32, 32, ["only"], "copies");
    }

    static readonly Normalization Identity = new(NormalizationMode.Channel, [0f, 0f, 0f], [1f / 255, 1f / 255, 1f / 255]);

    [Fact]
    public void Crops_and_flips_are_drawn_per_sample_not_per_batch()
    {
        var loader = new BatchLoader(new CifarSource(Copies(64), new CifarAugmentation(Train: true), Identity), 64, shuffle: true, seed: 1);
        using var batch = loader.MakeBatch(0, 0, loader.Order(0));
        var images = batch.Images.data<float>().ToArray();
        var distinct = Enumerable.Range(0, 64)
            .Select(i => string.Join(",", images.Skip(i * 3072).Take(3072)))
            .Distinct().Count();
        // 81 offsets x 2 flips: 64 independent draws give many different views of the same image.
        Assert.True(distinct > 30, $"only {distinct} distinct augmented views in a batch of 64 copies");
    }

    [Fact]
    public void A_crop_is_a_shift_with_zero_padding_and_a_flip_mirrors_rows()
    {
        var data = Copies(1);
        var transform = new CifarAugmentation(Train: true);
        var views = new List<byte[]>();
        for (ulong s = 0; s < 200; s++)
        {
            var rng = new Rng(s);
            var view = new byte[3072];
            transform.Apply(data, 0, view, ref rng);
            views.Add(view);
        }
        var source = data.Image(0).ToArray();
        foreach (var view in views)
        {
            // Every output pixel is either padding (0) or some source pixel moved by one common shift.
            bool matched = false;
            for (int dy = -4; dy <= 4 && !matched; dy++)
                for (int dx = -4; dx <= 4 && !matched; dx++)
                    foreach (bool flip in new[] { false, true })
                        if (Matches(view, source, dy, dx, flip)) { matched = true; break; }
            Assert.True(matched, "an augmented view is not a padded crop (optionally mirrored) of the source");
        }
        Assert.Contains(views, v => v[0] == 0);          // some views show padding in the corner
        Assert.Contains(views, v => v[0] != 0);
    }

    static bool Matches(byte[] view, byte[] source, int dy, int dx, bool flip)
    {
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                {
                    int sy = y + dy, sx = (flip ? 31 - x : x) + dx;
                    byte expected = sy is >= 0 and < 32 && sx is >= 0 and < 32 ? source[c * 1024 + sy * 32 + sx] : (byte)0;
                    if (view[c * 1024 + y * 32 + x] != expected) return false;
                }
        return true;
    }

    [Fact]
    public void The_same_seed_and_epoch_give_the_same_batches_and_another_epoch_differs()
    {
        var data = Trainer.Data.Cifar.CifarSample.LoadTest();
        var normalization = Normalization.Measure(data, NormalizationMode.Channel);
        BatchLoader Make() => new(new CifarSource(data, new CifarAugmentation(Train: true), normalization), 32, shuffle: true, seed: 7);
        float[] First(BatchLoader l, int epoch)
        {
            using var b = l.Epoch(epoch).First();
            return b.Images.data<float>().ToArray();
        }
        Assert.Equal(First(Make(), 3), First(Make(), 3));
        Assert.NotEqual(First(Make(), 3), First(Make(), 4));
    }

    [Fact]
    public void Evaluation_inputs_are_only_normalised()
    {
        var data = Copies(4);
        var loader = new BatchLoader(new CifarSource(data, new CifarAugmentation(Train: false), Identity), 4, shuffle: false, seed: 1);
        using var batch = loader.Epoch(0).Single();
        var values = batch.Images.data<float>().ToArray();
        var source = data.Image(0).ToArray().Select(b => (float)b).ToArray();
        for (int i = 0; i < 4; i++)
            Assert.Equal(source, values.Skip(i * 3072).Take(3072), (a, b) => Math.Abs(a - b) < 1e-3);
    }

    [Fact]
    public void Channel_normalisation_centres_each_channel_and_pixel_mean_subtracts_the_mean_image()
    {
        var data = Trainer.Data.Cifar.CifarSample.LoadTrain();
        var channel = Normalization.Measure(data, NormalizationMode.Channel);
        Assert.Equal(3, channel.Mean.Length);
        // CIFAR-10's well-known channel statistics, measured on this sample.
        Assert.InRange(channel.Mean[0], 0.46, 0.51);
        Assert.InRange(channel.Std[0], 0.23, 0.27);

        var pixel = Normalization.Measure(data, NormalizationMode.PixelMean);
        Assert.Equal(3072, pixel.Mean.Length);
        var loader = new BatchLoader(new CifarSource(data, new CifarAugmentation(Train: false), pixel), data.Count, shuffle: false, seed: 0);
        using var all = loader.Epoch(0).Single();
        var perPixelMean = all.Images.mean([0]).abs().max().item<float>();
        Assert.True(perPixelMean < 1e-4, $"per-pixel mean after subtraction is {perPixelMean}");
    }

    [Fact]
    public void Each_epoch_visits_every_sample_once_in_a_shuffled_order()
    {
        var loader = new BatchLoader(new CifarSource(Copies(100), new CifarAugmentation(Train: false), Identity), 32, shuffle: true, seed: 3);
        var order = loader.Order(0);
        Assert.Equal(Enumerable.Range(0, 100), order.Order());
        Assert.NotEqual(Enumerable.Range(0, 100), order);
        Assert.Equal(4, loader.BatchesPerEpoch);
        Assert.Equal([32L, 32, 32, 4], loader.Epoch(0).Select(b => { using (b) return b.Size; }).ToArray());
    }
}
