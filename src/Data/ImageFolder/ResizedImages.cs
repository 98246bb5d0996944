using Trainer.Data.Transforms;

namespace Trainer.Data.ImageFolder;

/// <summary>
/// Image files decoded and brought to one small size in memory, channel-planar as CIFAR records
/// are, so a CIFAR model's evaluation path takes them unchanged: the shorter side is resized to
/// <c>size</c> and the central size x size kept (<see cref="ImageTransform"/>'s evaluation crop
/// with no margin). An image that is already size x size passes pixel for pixel.
/// </summary>
internal static class ResizedImages
{
    /// <summary>Every file, unlabelled (label 0), with <paramref name="classes"/> as class names; an unreadable file is bad input naming it.</summary>
    public static ImageDataset Load(IReadOnlyList<string> files, int size, IReadOnlyList<string> classes, string source, int workers)
    {
        var transform = new ImageTransform { Train = false, Size = size, ResizeSize = size };
        int plane = size * size;
        var pixels = new byte[(long)files.Count * 3 * plane];
        var errors = new BadInputException?[files.Count];
        Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers) }, i =>
        {
            try
            {
                using var image = ImageDecoder.Decode(files[i]);
                var rgba = new byte[plane * 4];
                transform.Render(image, transform.CenterCrop(image.Width, image.Height), rgba);
                var planar = pixels.AsSpan(i * 3 * plane, 3 * plane);
                for (int p = 0; p < plane; p++)
                    for (int c = 0; c < 3; c++) planar[c * plane + p] = rgba[p * 4 + c];
            }
            catch (BadInputException e) { errors[i] = e; }
        });
        // The first bad file in the given order, whichever thread met it first.
        var first = errors.FirstOrDefault(e => e is not null);
        if (first is not null) throw first;
        return new ImageDataset(pixels, new int[files.Count], 3, size, size, classes, source);
    }
}
