using Trainer.Data.Loading;

namespace Trainer.Data.Transforms;

/// <summary>
/// The ResNet paper's CIFAR augmentation, drawn independently for every sample: zero-pad by
/// <see cref="Padding"/> pixels, take a random crop of the original size, flip horizontally with
/// probability 1/2; then normalise. With <see cref="Train"/> off it only normalises.
/// Padding is applied to raw pixels (black), as torchvision's RandomCrop(32, padding=4) does.
/// </summary>
public sealed record CifarAugmentation(Normalization Normalization, bool Train, int Padding = 4, bool Flip = true)
{
    /// <summary>Writes one image's network input into <paramref name="destination"/> (C*H*W floats).</summary>
    public void Apply(ImageDataset data, int index, Span<float> destination, ref Rng rng)
    {
        int h = data.Height, w = data.Width, plane = h * w;
        int dy = 0, dx = 0;
        bool flip = false;
        if (Train)
        {
            dy = rng.Next(2 * Padding + 1) - Padding;
            dx = rng.Next(2 * Padding + 1) - Padding;
            flip = Flip && rng.Next(2) == 1;
        }
        var image = data.Image(index);
        for (int c = 0; c < data.Channels; c++)
        {
            for (int y = 0; y < h; y++)
            {
                int sy = y + dy;
                for (int x = 0; x < w; x++)
                {
                    int sx = (flip ? w - 1 - x : x) + dx;
                    int j = c * plane + y * w + x;
                    byte pixel = sy >= 0 && sy < h && sx >= 0 && sx < w ? image[c * plane + sy * w + sx] : (byte)0;
                    destination[j] = Normalization.Apply(pixel, c, j);
                }
            }
        }
    }
}
