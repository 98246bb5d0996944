using System.Collections.Concurrent;
using SkiaSharp;
using Trainer.Data.Loading;
using Trainer.Data.Transforms;

namespace Trainer.Data.ImageFolder;

/// <summary>Where decoded images are kept between epochs.</summary>
public enum DecodeCache
{
    /// <summary>Decode every time (large data sets).</summary>
    None,
    /// <summary>Keep decoded images in memory (small subsets: 160x160 RGBA is 100 KB an image).</summary>
    Memory,
    /// <summary>Write decoded pixels (uint8 RGBA) to a cache folder once and read them back later.</summary>
    Disk,
}

/// <summary>
/// An image folder (or a caller's <see cref="IEncodedImages"/>) through an <see cref="ImageTransform"/>: decode (or take from the cache), draw
/// the crop plans and colour changes from the sample's generator, render each view into the batch.
/// The same code serves training, evaluation and prediction; only the transform differs.
/// </summary>
internal sealed class ImageFolderSource : ISampleSource
{
    readonly ILabelledImages _set;
    readonly Func<int, SKImage> _decode;
    readonly ImageTransform _transform;
    readonly DecodeCache _cache;
    readonly string? _cacheDir;
    // Lazy: two workers asking for one image decode it once.
    readonly ConcurrentDictionary<int, Lazy<SKImage>> _memory = new();

    public ImageFolderSource(ImageFolderSet set, ImageTransform transform, Normalization normalization, DecodeCache cache = DecodeCache.None, string? cacheDir = null)
        : this((ILabelledImages)set, i => ImageDecoder.Decode(set.Files[i]), transform, normalization, cache, cacheDir) { }

    /// <summary>Encoded images from anywhere; the disk cache (keyed by file) is an image folder's only.</summary>
    public ImageFolderSource(IEncodedImages images, ImageTransform transform, Normalization normalization, DecodeCache cache = DecodeCache.None)
        : this(images, i => ImageDecoder.Decode(images.Encoded(i), $"image {i} of {images.Source}"), transform, normalization,
            cache == DecodeCache.Disk ? throw new BadInputException($"data.cache: disk caches image files by path; {images.Source} has none (use memory or none)") : cache, null) { }

    ImageFolderSource(ILabelledImages set, Func<int, SKImage> decode, ImageTransform transform, Normalization normalization, DecodeCache cache, string? cacheDir)
    {
        _set = set;
        _decode = decode;
        _transform = transform;
        _cache = cache;
        if (cache == DecodeCache.Disk)
        {
            _cacheDir = cacheDir ?? throw new ArgumentException("a disk cache needs a folder");
            Directory.CreateDirectory(_cacheDir);
        }
        Layout = new SampleLayout(3, transform.Size, transform.Size, Interleaved: true, Views: transform.Views);
        Finish = new BatchFinish(normalization);
    }

    public ILabelledImages Images => _set;
    public SampleLayout Layout { get; }
    public BatchFinish Finish { get; }

    public void Write(int index, Span<byte> destination, ref Rng rng, out ColorDraw color)
    {
        var image = Image(index, out bool owned);
        try
        {
            var plans = _transform.Plan(image.Width, image.Height, ref rng);
            for (int v = 0; v < plans.Length; v++)
                _transform.Render(image, plans[v], destination.Slice(v * Layout.BytesPerView, Layout.BytesPerView));
            color = _transform.Train ? _transform.Color.Draw(ref rng) : ColorDraw.None;
        }
        finally
        {
            if (owned) image.Dispose();
        }
    }

    /// <summary>The decoded image; <paramref name="owned"/> when the caller must dispose it (not cached in memory).</summary>
    SKImage Image(int index, out bool owned)
    {
        owned = false;
        if (_cache == DecodeCache.Memory) return _memory.GetOrAdd(index, i => new Lazy<SKImage>(() => _decode(i))).Value;
        owned = true;
        if (_cache == DecodeCache.None) return _decode(index);
        return FromDisk(index);
    }

    SKImage FromDisk(int index)
    {
        // Keyed by the file's path, size and time, so a changed file is decoded again.
        var file = new FileInfo(((ImageFolderSet)_set).Files[index]);
        var key = Convert.ToHexString(System.Security.Cryptography.SHA1.HashData(
            System.Text.Encoding.UTF8.GetBytes($"{file.FullName}|{file.Length}|{file.LastWriteTimeUtc.Ticks}")));
        var path = Path.Combine(_cacheDir!, key + ".rgba");
        if (File.Exists(path))
        {
            var bytes = File.ReadAllBytes(path);
            int w = BitConverter.ToInt32(bytes, 0), h = BitConverter.ToInt32(bytes, 4);
            if (bytes.Length == 8 + 4L * w * h)
            {
                var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque);
                return SKImage.FromPixelCopy(info, bytes.AsSpan(8)) ?? ImageDecoder.Decode(file.FullName);
            }
        }
        var image = ImageDecoder.Decode(file.FullName);
        var pixels = new byte[8 + 4L * image.Width * image.Height];
        BitConverter.TryWriteBytes(pixels.AsSpan(0, 4), image.Width);
        BitConverter.TryWriteBytes(pixels.AsSpan(4, 4), image.Height);
        unsafe
        {
            fixed (byte* p = pixels)
                image.ReadPixels(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque), (IntPtr)(p + 8), image.Width * 4, 0, 0);
        }
        // Write to a temporary name and rename, so a crash never leaves a torn cache entry.
        var temporary = path + "." + Environment.ProcessId + ".tmp";
        File.WriteAllBytes(temporary, pixels);
        File.Move(temporary, path, overwrite: true);
        return image;
    }
}
