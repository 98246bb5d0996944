using TorchSharp;
using Trainer.Data.Loading;
using static TorchSharp.torch;

namespace Trainer.Data.Transforms;

/// <summary>One sample's colour changes, drawn with its geometry and applied batch-wide: factors of 1 and offsets of 0 change nothing.</summary>
internal readonly record struct ColorDraw(float Brightness, float Contrast, float Saturation, float LightR, float LightG, float LightB)
{
    public static readonly ColorDraw None = new(1, 1, 1, 0, 0, 0);
    public bool IsNone => this == None;
}

/// <summary>
/// The papers' colour augmentations as fb.resnet.torch (the ResNet authors' reference code) applies
/// them, after the geometric transform, on [0, 1] pixels: colour jitter (brightness, contrast and
/// saturation factors drawn uniformly in [1 - j, 1 + j], applied in that order, each clamped to
/// [0, 1]; no hue change, as in that code) and AlexNet's PCA lighting noise (RGB shifted by
/// eigvec x (alpha * eigval), alpha ~ N(0, std) per sample, ImageNet's eigen decomposition).
/// </summary>
internal sealed record ColorAugmentation(double Jitter, double LightingStd)
{
    // ImageNet RGB covariance eigen decomposition (Krizhevsky et al. 2012, as fb.resnet.torch gives it).
    static readonly float[] EigenValues = [0.2175f, 0.0188f, 0.0045f];
    static readonly float[,] EigenVectors =
    {
        { -0.5675f, 0.7192f, 0.4009f },
        { -0.5808f, -0.0045f, -0.8140f },
        { -0.5836f, -0.6948f, 0.4203f },
    };

    public bool IsOff => Jitter <= 0 && LightingStd <= 0;

    public ColorDraw Draw(ref Rng rng)
    {
        if (IsOff) return ColorDraw.None;
        float Factor(ref Rng r) => Jitter > 0 ? (float)(1 - Jitter + 2 * Jitter * r.NextDouble()) : 1f;
        float b = Factor(ref rng), c = Factor(ref rng), s = Factor(ref rng);
        var shift = new float[3];
        if (LightingStd > 0)
        {
            var alpha = new float[3];
            for (int k = 0; k < 3; k++) alpha[k] = (float)(rng.NextGaussian() * LightingStd) * EigenValues[k];
            for (int ch = 0; ch < 3; ch++)
                for (int k = 0; k < 3; k++) shift[ch] += EigenVectors[ch, k] * alpha[k];
        }
        return new ColorDraw(b, c, s, shift[0], shift[1], shift[2]);
    }

    /// <summary>
    /// Applies each sample's brightness, contrast and saturation to an (N, H, W, 4) float batch of
    /// RGBA in [0, 1] (the fourth channel is ignored and later dropped). Lighting is an offset per
    /// sample and channel, folded into the normalisation by <see cref="BatchFinish"/>.
    /// </summary>
    public static void ApplyFactors(Tensor rgba, ColorDraw[] draws)
    {
        using var scope = NewDisposeScope();
        long n = rgba.shape[0], pixels = rgba.shape[1] * rgba.shape[2];
        Tensor PerSample(Func<ColorDraw, float> pick) => tensor(draws.Select(pick).ToArray(), device: rgba.device).reshape(n, 1, 1, 1);
        var grayWeights = tensor(new[] { 0.299f, 0.587f, 0.114f, 0f }, device: rgba.device);
        Tensor Gray() => rgba.view(n, pixels, 4).matmul(grayWeights);   // (N, H*W)
        // Scalars are held, not converted implicitly: a temporary one can be collected while the
        // native call still reads it (seen as a corrupted-scalar error from a loader thread).
        using Scalar zero = 0, one = 1;

        rgba.mul_(PerSample(d => d.Brightness)).clamp_(zero, one);
        var contrast = PerSample(d => d.Contrast);
        var mean = Gray().mean([1]).reshape(n, 1, 1, 1);
        rgba.mul_(contrast).add_(contrast.neg().add_(one).mul(mean)).clamp_(zero, one);
        var saturation = PerSample(d => d.Saturation);
        var gray = Gray().reshape(n, rgba.shape[1], rgba.shape[2], 1);
        rgba.mul_(saturation).add_(saturation.neg().add_(one).mul(gray)).clamp_(zero, one);
    }
}

/// <summary>
/// Turns a batch of uint8 pixels into the network's input with whole-batch tensor operations:
/// to float, the per-sample colour draws, normalisation. Interleaved RGBA batches are scaled and
/// shifted as rows of W x 4 values (long contiguous rows vectorise where a broadcast over a
/// 3-wide channel axis does not) and become NCHW tensors with channels-last strides.
/// </summary>
internal sealed record BatchFinish(Normalization Normalization)
{
    /// <summary>
    /// The first n samples of <paramref name="pixels"/> (which may be longer: a pooled buffer) as a
    /// finished batch that shares no memory with it. Interleaved batches are written into
    /// <paramref name="output"/> when given: an (N x V, H, W, 3) float tensor to reuse (fresh
    /// memory of that size costs more to fault in than the whole finishing step).
    /// </summary>
    public Tensor Apply(byte[] pixels, int n, SampleLayout layout, ColorDraw[] colors, Tensor? output = null)
    {
        using var bytes = frombuffer(pixels, ScalarType.Byte, count: (long)n * layout.BytesPerSample);
        return Apply(bytes, n, layout, colors, output);
    }

    /// <summary>
    /// The same from n samples of uint8 pixels in a tensor on any device: on a GPU the batch
    /// travels as bytes (a quarter of the floats' size) and is finished there, in one piece.
    /// The result is on the pixels' device and computes the same values as the CPU path.
    /// </summary>
    public Tensor Apply(Tensor bytes, int n, SampleLayout layout, ColorDraw[] colors, Tensor? output = null)
    {
        using var scope = NewDisposeScope();
        long count = (long)n * layout.Views;
        Tensor x;
        if (layout.Interleaved)
        {
            var rgba = bytes.view(count, layout.Height, layout.Width, 4);
            x = output?.alias() ?? empty(count, layout.Height, layout.Width, 3, device: bytes.device);
            // On the CPU a few images at a time, so each chunk's float passes stay in cache; on a GPU all at once.
            long chunkImages = bytes.device_type == TorchSharp.DeviceType.CPU ? ChunkImages : count;
            for (long start = 0; start < count; start += chunkImages)
            {
                long end = Math.Min(count, start + chunkImages);
                using var chunkScope = NewDisposeScope();
                var chunk = FinishRgba(rgba[TensorIndex.Slice(start, end)], layout, layout.Views == 1 ? colors.AsSpan((int)start, (int)(end - start)) : default);
                x[TensorIndex.Slice(start, end)].copy_(chunk);
            }
            x = x.permute(0, 3, 1, 2);
        }
        else
        {
            var planar = bytes.view(count, layout.Channels, layout.Height, layout.Width);
            using Scalar full = 255;
            x = Normalization.Apply(planar.to_type(ScalarType.Float32).div_(full), channelDim: 1);
        }
        if (layout.Views > 1) x = x.unflatten(0, [n, layout.Views]);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Images finished per group of tensor operations (about 3 MB of floats at 160x160).</summary>
    const int ChunkImages = 4;

    /// <summary>(n, H, W, 4) uint8 RGBA -> (n, H, W, 3) normalised floats (a strided view of RGBA floats).</summary>
    Tensor FinishRgba(Tensor rgba, SampleLayout layout, ReadOnlySpan<ColorDraw> colors)
    {
        long n = rgba.shape[0];
        var bytes = rgba.view(n, layout.Height, layout.Width * 4);
        bool color = false;
        foreach (var c in colors) color |= !c.IsNone;
        var draws = colors.Length == n ? colors.ToArray() : Enumerable.Repeat(ColorDraw.None, (int)n).ToArray();
        if (Normalization.Mode != NormalizationMode.Channel) throw new InvalidOperationException("decoded images use per-channel normalisation");
        // Statistics by decoded (RGB) channel; the channel order the network wants is applied at the end.
        var mean = new float[3];
        var std = new float[3];
        for (int c = 0; c < 3; c++) (mean[c], std[c]) = Normalization.ForRgbChannel(c);
        float scale = Normalization.Scale;
        // Per sample: (lighting offset x scale - mean) / std, repeated along the row.
        var shifts = draws.SelectMany(d => new[] { (d.LightR * scale - mean[0]) / std[0], (d.LightG * scale - mean[1]) / std[1], (d.LightB * scale - mean[2]) / std[2], 0f }).ToArray();
        var bias = tensor(shifts, [n, 1, 1, 4], device: rgba.device).expand(n, 1, layout.Width, 4).reshape(n, 1, layout.Width * 4);
        Tensor rows;
        if (color)
        {
            rows = bytes.to_type(ScalarType.Float32).mul_(Row(layout.Width, _ => 1f / 255, rgba.device));
            ColorAugmentation.ApplyFactors(rows.view(n, layout.Height, layout.Width, 4), draws);
            rows.mul_(Row(layout.Width, c => scale / std[c], rgba.device)).add_(bias);
        }
        else
        {
            // One pass from bytes to normalised floats: bias + bytes x scale/(255 std).
            using Scalar one = 1;
            rows = addcmul(bias, bytes, Row(layout.Width, c => scale / (255 * std[c]), rgba.device), one);
        }
        var rgb = rows.view(n, layout.Height, layout.Width, 4)[.., .., .., TensorIndex.Slice(0, 3)];
        return Normalization.Bgr ? rgb.flip(3) : rgb;
    }

    /// <summary>A per-channel value repeated across a row of <paramref name="width"/> RGBA pixels (0 for the fourth channel).</summary>
    static Tensor Row(int width, Func<int, float> perChannel, Device device)
    {
        var row = new float[width * 4];
        for (int w = 0; w < width; w++)
            for (int c = 0; c < 3; c++) row[w * 4 + c] = perChannel(c);
        return tensor(row, device: device);
    }
}
