using Trainer.Data.Transforms;

namespace Trainer.Data.Loading;

/// <summary>
/// How one sample's bytes sit in a batch: <c>Views</c> images (10 for the ten-crop test, else 1) of
/// Height x Width pixels, each either channel-planar (C, H, W; CIFAR) or interleaved RGBA
/// (H, W, 4; decoded images, whose fourth byte is dropped when the batch is finished).
/// </summary>
internal sealed record SampleLayout(int Channels, int Height, int Width, bool Interleaved, int Views = 1)
{
    public int BytesPerView => Interleaved ? Height * Width * 4 : Channels * Height * Width;
    public int BytesPerSample => BytesPerView * Views;
}

/// <summary>
/// What a <see cref="BatchLoader"/> draws from: a labelled collection plus the per-sample
/// transform that writes sample i (geometry drawn from <c>rng</c>) as uint8 pixels. Colour
/// changes are only drawn here, as numbers, and applied to the whole batch at once by
/// <see cref="Finish"/>, so no managed loop touches every pixel.
/// </summary>
internal interface ISampleSource
{
    ILabelledImages Images { get; }
    SampleLayout Layout { get; }
    /// <summary>uint8 batch to normalised float network input.</summary>
    BatchFinish Finish { get; }
    void Write(int index, Span<byte> destination, ref Rng rng, out ColorDraw color);
}
