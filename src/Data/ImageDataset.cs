namespace Trainer.Data;

/// <summary>
/// Labelled images held in memory as bytes, channel-planar (C, H, W), all of one size.
/// CIFAR files load into this directly.
/// </summary>
public sealed class ImageDataset : ILabelledImages
{
    public ImageDataset(byte[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classes, string source)
    {
        if (pixels.Length != (long)labels.Length * channels * height * width)
            throw new ArgumentException("pixel buffer does not match the label count and image shape");
        Pixels = pixels; Labels = labels; Channels = channels; Height = height; Width = width; Classes = classes; Source = source;
    }

    public byte[] Pixels { get; }
    public int[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> Classes { get; }
    /// <summary>Where the images came from, for messages and the run summary.</summary>
    public string Source { get; }

    public int Count => Labels.Length;
    public int Label(int index) => Labels[index];
    public int ImageSize => Channels * Height * Width;

    public ReadOnlySpan<byte> Image(int index) => Pixels.AsSpan(index * ImageSize, ImageSize);

    /// <summary>A new dataset holding the given samples, in the given order.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices, string? source = null)
    {
        var pixels = new byte[indices.Count * ImageSize];
        var labels = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            Image(indices[i]).CopyTo(pixels.AsSpan(i * ImageSize, ImageSize));
            labels[i] = Labels[indices[i]];
        }
        return new ImageDataset(pixels, labels, Channels, Height, Width, Classes, source ?? Source);
    }

    /// <summary>
    /// Carves a validation split off the end of a seeded permutation (the ResNet paper's 45k/5k):
    /// the same seed always gives the same split.
    /// </summary>
    public (ImageDataset Train, ImageDataset Validation) Split(int validationCount, ulong seed)
    {
        if (validationCount <= 0 || validationCount >= Count)
            throw new BadInputException($"data.val_split must be between 1 and {Count - 1} for {Source}, got {validationCount}");
        var order = new Loading.Rng(seed, 0x5911).Permutation(Count);
        var train = order.Take(Count - validationCount).Order().ToArray();
        var val = order.Skip(Count - validationCount).Order().ToArray();
        return (Subset(train, Source + " (train split)"), Subset(val, Source + " (validation split)"));
    }
}
