using SkiaSharp;
using Trainer.Data.Loading;

namespace Trainer.Data.Transforms;

/// <summary>How training images are cropped.</summary>
public enum TrainCrop
{
    /// <summary>torchvision's RandomResizedCrop: a random area (scale) and aspect ratio (ratio), resized to size x size.</summary>
    RandomResized,
    /// <summary>The ResNet paper's scale augmentation: shorter side random in [short_side_min, short_side_max], then a random size x size crop.</summary>
    Scale,
    /// <summary>No random crop: the evaluation resize and center crop.</summary>
    Center,
}

/// <summary>Which part of a source image (in its pixels) becomes one output view, and whether it is mirrored.</summary>
internal readonly record struct CropPlan(float X, float Y, float Width, float Height, bool Flip);

/// <summary>
/// The geometric transforms of the ImageNet recipes, as pure functions from an image's size and a
/// generator to crop plans (tested on their own), and a renderer that resamples a plan straight
/// into a batch buffer with Skia (bilinear, with mipmaps when shrinking more than 2x).
/// Evaluation: resize the shorter side to <see cref="ResizeSize"/>, center-crop <see cref="Size"/>;
/// with <see cref="TenCrop"/>, the four corners and the center and their mirror images (the ResNet
/// paper's 10-crop test, in torchvision's TenCrop order).
/// </summary>
internal sealed record ImageTransform
{
    public bool Train { get; init; }
    public int Size { get; init; } = 224;
    public int ResizeSize { get; init; } = 256;
    public TrainCrop Crop { get; init; } = TrainCrop.RandomResized;
    public double ScaleMin { get; init; } = 0.08;
    public double ScaleMax { get; init; } = 1.0;
    public double RatioMin { get; init; } = 3.0 / 4.0;
    public double RatioMax { get; init; } = 4.0 / 3.0;
    public int ShortSideMin { get; init; } = 256;
    public int ShortSideMax { get; init; } = 480;
    public bool Flip { get; init; } = true;
    public ColorAugmentation Color { get; init; } = new(0, 0);
    public bool TenCrop { get; init; }

    public int Views => !Train && TenCrop ? 10 : 1;

    public CropPlan[] Plan(int width, int height, ref Rng rng)
    {
        if (!Train) return TenCrop ? TenCrops(width, height) : [CenterCrop(width, height)];
        var plan = Crop switch
        {
            TrainCrop.RandomResized => RandomResizedCrop(width, height, ref rng),
            TrainCrop.Scale => ScaleCrop(width, height, ref rng),
            _ => CenterCrop(width, height),
        };
        return [plan with { Flip = Flip && rng.Next(2) == 1 }];
    }

    /// <summary>torchvision's RandomResizedCrop.get_params: ten tries at a random area and log-uniform ratio, else a center crop at the nearest allowed ratio.</summary>
    public CropPlan RandomResizedCrop(int width, int height, ref Rng rng)
    {
        double area = (double)width * height;
        double logMin = Math.Log(RatioMin), logMax = Math.Log(RatioMax);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * rng.Uniform(ScaleMin, ScaleMax);
            double ratio = Math.Exp(rng.Uniform(logMin, logMax));
            int w = (int)Math.Round(Math.Sqrt(target * ratio)), h = (int)Math.Round(Math.Sqrt(target / ratio));
            if (w > 0 && h > 0 && w <= width && h <= height)
            {
                int top = rng.Next(height - h + 1), left = rng.Next(width - w + 1);
                return new CropPlan(left, top, w, h, false);
            }
        }
        double inRatio = (double)width / height;
        int cw = width, ch = height;
        if (inRatio < RatioMin) ch = (int)Math.Round(cw / RatioMin);
        else if (inRatio > RatioMax) cw = (int)Math.Round(ch * RatioMax);
        return new CropPlan((width - cw) / 2, (height - ch) / 2, cw, ch, false);
    }

    /// <summary>The ResNet paper's scale augmentation: shorter side drawn in [min, max], then a random Size crop of the resized image.</summary>
    public CropPlan ScaleCrop(int width, int height, ref Rng rng)
    {
        int shortSide = ShortSideMin + rng.Next(ShortSideMax - ShortSideMin + 1);
        var (rw, rh) = Resized(width, height, shortSide);
        double sx = (double)rw / width, sy = (double)rh / height;
        int top = rng.Next(Math.Max(1, rh - Size + 1)), left = rng.Next(Math.Max(1, rw - Size + 1));
        return new CropPlan((float)(left / sx), (float)(top / sy), (float)(Size / sx), (float)(Size / sy), false);
    }

    /// <summary>Resize the shorter side to ResizeSize (torchvision's integer sizes), then the central Size x Size.</summary>
    public CropPlan CenterCrop(int width, int height) => ResizedCrop(width, height, Corner.Center, flip: false);

    /// <summary>torchvision's TenCrop: top-left, top-right, bottom-left, bottom-right, center; then the same five of the mirrored image.</summary>
    public CropPlan[] TenCrops(int width, int height)
    {
        Corner[] five = [Corner.TopLeft, Corner.TopRight, Corner.BottomLeft, Corner.BottomRight, Corner.Center];
        // A crop of the mirrored image at a left corner is the mirror of the original's right corner.
        Corner[] mirrored = [Corner.TopRight, Corner.TopLeft, Corner.BottomRight, Corner.BottomLeft, Corner.Center];
        return [.. five.Select(c => ResizedCrop(width, height, c, false)), .. mirrored.Select(c => ResizedCrop(width, height, c, true))];
    }

    enum Corner { TopLeft, TopRight, BottomLeft, BottomRight, Center }

    CropPlan ResizedCrop(int width, int height, Corner corner, bool flip)
    {
        var (rw, rh) = Resized(width, height, ResizeSize);
        double sx = (double)rw / width, sy = (double)rh / height;
        int s = Size;
        var (left, top) = corner switch
        {
            Corner.TopLeft => (0, 0),
            Corner.TopRight => (rw - s, 0),
            Corner.BottomLeft => (0, rh - s),
            Corner.BottomRight => (rw - s, rh - s),
            _ => ((int)Math.Round((rw - s) / 2.0, MidpointRounding.ToEven), (int)Math.Round((rh - s) / 2.0, MidpointRounding.ToEven)),
        };
        return new CropPlan((float)(left / sx), (float)(top / sy), (float)(s / sx), (float)(s / sy), flip);
    }

    /// <summary>torchvision's Resize(size) dimensions: the shorter side becomes size, the longer int(size x long / short).</summary>
    public static (int Width, int Height) Resized(int width, int height, int shortSide) =>
        width <= height ? (shortSide, (int)((long)shortSide * height / width)) : ((int)((long)shortSide * width / height), shortSide);

    /// <summary>Resamples the plan's region of <paramref name="image"/> into <paramref name="destination"/> (Size x Size RGBA bytes).</summary>
    public unsafe void Render(SKImage image, CropPlan plan, Span<byte> destination)
    {
        var info = new SKImageInfo(Size, Size, SKColorType.Rgba8888, SKAlphaType.Premul);
        if (destination.Length < info.BytesSize) throw new ArgumentException("destination is smaller than one view");
        fixed (byte* pixels = destination)
        {
            using var surface = SKSurface.Create(info, (IntPtr)pixels, info.RowBytes)
                ?? throw new InvalidOperationException("Skia could not draw into the batch buffer");
            var canvas = surface.Canvas;
            if (plan.Flip)
            {
                canvas.Translate(Size, 0);
                canvas.Scale(-1, 1);
            }
            bool shrinking = plan.Width > 2 * Size || plan.Height > 2 * Size;
            var sampling = new SKSamplingOptions(SKFilterMode.Linear, shrinking ? SKMipmapMode.Linear : SKMipmapMode.None);
            canvas.DrawImage(image, SKRect.Create(plan.X, plan.Y, plan.Width, plan.Height), SKRect.Create(0, 0, Size, Size), sampling);
            canvas.Flush();
        }
    }
}
