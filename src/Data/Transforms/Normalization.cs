namespace Trainer.Data.Transforms;

/// <summary>How pixels (scaled to [0, 1]) are centred before they reach the network.</summary>
public enum NormalizationMode
{
    /// <summary>Per-channel mean and standard deviation (torchvision's Normalize).</summary>
    Channel,
    /// <summary>The ResNet paper's per-pixel mean subtraction: the mean image is subtracted, no scaling.</summary>
    PixelMean,
}

/// <summary>
/// Statistics measured on the training images; saved in checkpoints so evaluation and prediction
/// centre pixels exactly as training did. Mean has one value per channel (Channel) or per pixel
/// (PixelMean); Std has one value per channel.
/// </summary>
public sealed record Normalization(NormalizationMode Mode, float[] Mean, float[] Std)
{
    /// <summary>The network takes its channels in BGR order (weights trained in Caffe or CNTK); Mean and Std are then in BGR order too.</summary>
    public bool Bgr { get; init; }

    /// <summary>What a pixel of full intensity is before centring: 1 (torchvision's [0, 1]) or 255 (Caffe's and CNTK's [0, 255]); Mean and Std are in these units.</summary>
    public float Scale { get; init; } = 1;

    /// <summary>The mean and std that apply to channel <paramref name="rgb"/> (0 red, 1 green, 2 blue) of a decoded image.</summary>
    public (float Mean, float Std) ForRgbChannel(int rgb) => Bgr ? (Mean[Mean.Length - 1 - rgb], Std[Std.Length - 1 - rgb]) : (Mean[rgb], Std[rgb]);

    /// <summary>"RGB in [0, 1], mean 0.485/0.456/0.406, std 0.229/0.224/0.225": for logs and the docs.</summary>
    public string Describe() => Mode == NormalizationMode.PixelMean
        ? $"{(Bgr ? "BGR" : "RGB")} in [0, {Scale:0.###}], a per-pixel mean image subtracted"
        : $"{(Bgr ? "BGR" : "RGB")} in [0, {Scale:0.###}], mean {string.Join("/", Mean.Select(m => m.ToString("0.###")))}, std {string.Join("/", Std.Select(m => m.ToString("0.###")))}";

    public static Normalization Measure(ImageDataset data, NormalizationMode mode)
    {
        int plane = data.Height * data.Width, size = data.ImageSize;
        var sum = new double[size];
        var channelSum = new double[data.Channels];
        var channelSquares = new double[data.Channels];
        for (int i = 0; i < data.Count; i++)
        {
            var image = data.Image(i);
            for (int j = 0; j < size; j++)
            {
                double v = image[j] / 255.0;
                sum[j] += v;
                channelSum[j / plane] += v;
                channelSquares[j / plane] += v * v;
            }
        }
        double perChannel = (double)data.Count * plane;
        var std = new float[data.Channels];
        var channelMean = new float[data.Channels];
        for (int c = 0; c < data.Channels; c++)
        {
            double mean = channelSum[c] / perChannel;
            channelMean[c] = (float)mean;
            std[c] = (float)Math.Sqrt(Math.Max(channelSquares[c] / perChannel - mean * mean, 1e-12));
        }
        return mode == NormalizationMode.Channel
            ? new Normalization(mode, channelMean, std)
            : new Normalization(mode, sum.Select(s => (float)(s / data.Count)).ToArray(), Enumerable.Repeat(1f, data.Channels).ToArray());
    }

    /// <summary>torchvision's ImageNet statistics (mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225).</summary>
    public static readonly Normalization ImageNet = new(NormalizationMode.Channel, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>Normalises a float batch of RGB in [0, 1] (scaled, reordered to BGR where the network wants it) with channels along <paramref name="channelDim"/> (1: NCHW, 3: NHWC; the pixel mean needs NCHW).</summary>
    public TorchSharp.torch.Tensor Apply(TorchSharp.torch.Tensor x, int channelDim)
    {
        var shape = new long[] { 1, 1, 1, 1 };
        shape[channelDim] = Std.Length;
        // Every intermediate is a named local held to the end: a temporary's wrapper may otherwise be collected while a native call still uses it.
        if (Scale != 1)
        {
            using TorchSharp.Scalar scale = Scale;
            x = x.mul_(scale);
        }
        if (Bgr) x = x.flip(channelDim);
        using var stdValues = TorchSharp.torch.tensor(Std, device: x.device);
        using var std = stdValues.reshape(shape);
        using var meanValues = TorchSharp.torch.tensor(Mean, device: x.device);
        if (Mode == NormalizationMode.Channel)
        {
            using var mean = meanValues.reshape(shape);
            return x.sub_(mean).div_(std);
        }
        if (channelDim != 1) throw new InvalidOperationException("the per-pixel mean applies to channel-planar images");
        using var image = meanValues.reshape(1, x.shape[1], x.shape[2], x.shape[3]);
        return x.sub_(image);
    }
}
