using SkiaSharp;

namespace Trainer.Data.ImageFolder;

/// <summary>
/// Decodes JPEG, PNG, BMP, GIF (the first frame) and WebP files with Skia into opaque RGBA: grayscale and CMYK become RGB, an
/// alpha channel is dropped (as PIL's convert("RGB") does), and the EXIF orientation is applied.
/// A file that is not an image, is truncated, or declares absurd dimensions is bad input naming it.
/// </summary>
internal static class ImageDecoder
{
    /// <summary>Refuse images above this many pixels (a decompression bomb guard; PIL warns at 89M).</summary>
    public const long MaxPixels = 100_000_000;

    public static SKImage Decode(string path)
    {
        SKData? data;
        try { data = SKData.Create(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new BadInputException($"cannot read image {path}: {e.Message}"); }
        if (data is null) throw new BadInputException($"cannot read image {path}");
        using (data) return Decode(data, path);
    }

    /// <summary>Encoded bytes from anywhere (an <see cref="IEncodedImages"/>); <paramref name="name"/> names them in messages.</summary>
    public static SKImage Decode(byte[] encoded, string name)
    {
        using var data = SKData.CreateCopy(encoded);
        return Decode(data, name);
    }

    static SKImage Decode(SKData data, string path)
    {
        using var codec = SKCodec.Create(data) ?? throw new BadInputException($"{path} is not a readable image (JPEG, PNG, BMP, GIF or WebP)");
        var (w, h) = (codec.Info.Width, codec.Info.Height);
        if (w <= 0 || h <= 0 || (long)w * h > MaxPixels)
            throw new BadInputException($"{path} declares {w}x{h} pixels (at most {MaxPixels:N0} are accepted)");
        bool hasAlpha = codec.Info.AlphaType != SKAlphaType.Opaque;
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, hasAlpha ? SKAlphaType.Unpremul : SKAlphaType.Opaque);
        var bitmap = new SKBitmap(info);
        try
        {
            var result = codec.GetPixels(info, bitmap.GetPixels());
            if (result == SKCodecResult.IncompleteInput || result == SKCodecResult.ErrorInInput)
                throw new BadInputException($"{path} is truncated or corrupt ({result})");
            if (result != SKCodecResult.Success)
                throw new BadInputException($"{path} could not be decoded ({result})");
            if (hasAlpha) DropAlpha(bitmap);
            var oriented = Orient(bitmap, codec.EncodedOrigin);
            if (!ReferenceEquals(oriented, bitmap)) bitmap.Dispose();
            oriented.SetImmutable();
            return SKImage.FromBitmap(oriented) ?? throw new BadInputException($"{path} could not be decoded");
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
    }

    /// <summary>Width and height as displayed (after the EXIF orientation), from the header alone.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        using var codec = SKCodec.Create(path) ?? throw new BadInputException($"{path} is not a readable image (JPEG, PNG, BMP, GIF or WebP)");
        var (w, h) = (codec.Info.Width, codec.Info.Height);
        return codec.EncodedOrigin >= SKEncodedOrigin.LeftTop ? (h, w) : (w, h);
    }

    static unsafe void DropAlpha(SKBitmap bitmap)
    {
        var pixels = new Span<byte>((void*)bitmap.GetPixels(), bitmap.ByteCount);
        // Alpha 255 everywhere: unpremultiplied and premultiplied values agree, so drawing keeps RGB.
        for (int i = 3; i < pixels.Length; i += 4) pixels[i] = 255;
    }

    /// <summary>Redraws <paramref name="bitmap"/> as EXIF <paramref name="origin"/> says it is meant to be seen.</summary>
    static SKBitmap Orient(SKBitmap bitmap, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft) return bitmap;
        float w = bitmap.Width, h = bitmap.Height;
        // x' = ScaleX x + SkewX y + TransX, y' = SkewY x + ScaleY y + TransY for each EXIF orientation (2-8).
        var m = origin switch
        {
            SKEncodedOrigin.TopRight => new SKMatrix(-1, 0, w, 0, 1, 0, 0, 0, 1),
            SKEncodedOrigin.BottomRight => new SKMatrix(-1, 0, w, 0, -1, h, 0, 0, 1),
            SKEncodedOrigin.BottomLeft => new SKMatrix(1, 0, 0, 0, -1, h, 0, 0, 1),
            SKEncodedOrigin.LeftTop => new SKMatrix(0, 1, 0, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightTop => new SKMatrix(0, -1, h, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightBottom => new SKMatrix(0, -1, h, -1, 0, w, 0, 0, 1),
            SKEncodedOrigin.LeftBottom => new SKMatrix(0, 1, 0, -1, 0, w, 0, 0, 1),
            _ => SKMatrix.Identity,
        };
        bool swap = origin >= SKEncodedOrigin.LeftTop;
        var oriented = new SKBitmap(new SKImageInfo(swap ? bitmap.Height : bitmap.Width, swap ? bitmap.Width : bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(oriented);
        canvas.SetMatrix(m);
        canvas.DrawBitmap(bitmap, 0, 0);
        return oriented;
    }
}
