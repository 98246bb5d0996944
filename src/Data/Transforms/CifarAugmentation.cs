using Trainer.Data.Loading;

namespace Trainer.Data.Transforms;

/// <summary>
/// The ResNet paper's CIFAR augmentation, drawn independently for every sample: zero-pad by
/// <see cref="Padding"/> pixels, take a random crop of the original size, flip horizontally with
/// probability 1/2. With <see cref="Train"/> off the image passes unchanged. Padding is applied
/// to raw pixels (black), as torchvision's RandomCrop(32, padding=4) does. Normalisation happens
/// batch-wide afterwards (<see cref="BatchFinish"/>).
/// </summary>
internal sealed record CifarAugmentation(bool Train, int Padding = 4, bool Flip = true)
{
    /// <summary>Writes one image, shifted and mirrored, into <paramref name="destination"/> (C*H*W bytes, planar), row by row.</summary>
    public void Apply(ImageDataset data, int index, Span<byte> destination, ref Rng rng)
    {
        int h = data.Height, w = data.Width;
        int dy = 0, dx = 0;
        bool flip = false;
        if (Train)
        {
            dy = rng.Next(2 * Padding + 1) - Padding;
            dx = rng.Next(2 * Padding + 1) - Padding;
            flip = Flip && rng.Next(2) == 1;
        }
        var image = data.Image(index);
        // Output column x shows source column x + dx (before the mirror); the rest is padding.
        int from = Math.Max(0, -dx), to = Math.Min(w, w - dx);
        for (int c = 0; c < data.Channels; c++)
        {
            for (int y = 0; y < h; y++)
            {
                var row = destination.Slice((c * h + y) * w, w);
                int sy = y + dy;
                if (sy < 0 || sy >= h || to <= from) { row.Clear(); continue; }
                row[..from].Clear();
                row[to..].Clear();
                image.Slice((c * h + sy) * w + from + dx, to - from).CopyTo(row[from..to]);
                if (flip) row.Reverse();
            }
        }
    }
}

/// <summary>CIFAR images in memory through <see cref="CifarAugmentation"/>, normalised batch-wide.</summary>
internal sealed class CifarSource(ImageDataset data, CifarAugmentation augmentation, Normalization normalization) : ISampleSource
{
    public ILabelledImages Images => data;
    public SampleLayout Layout { get; } = new(data.Channels, data.Height, data.Width, Interleaved: false);
    public BatchFinish Finish { get; } = new(normalization);

    public void Write(int index, Span<byte> destination, ref Rng rng, out ColorDraw color)
    {
        augmentation.Apply(data, index, destination, ref rng);
        color = ColorDraw.None;
    }
}
