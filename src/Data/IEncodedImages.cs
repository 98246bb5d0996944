namespace Trainer.Data;

/// <summary>
/// Labelled images of your own, encoded (JPEG, PNG, BMP, GIF or WebP) wherever they are kept: a
/// database, an archive, files listed in a CSV. A run reads them as it reads an image folder: the
/// same decoding and the same transforms (data.train_crop, flip, colour; the evaluation resize and
/// crop), ImageNet's normalisation. For images already decoded into memory, all of one size, use
/// <see cref="ImageDataset"/> (CIFAR's augmentation, statistics measured on them).
/// </summary>
public interface IEncodedImages : ILabelledImages
{
    /// <summary>The encoded bytes of image <paramref name="index"/>; called from several loader threads at once.</summary>
    byte[] Encoded(int index);
}
