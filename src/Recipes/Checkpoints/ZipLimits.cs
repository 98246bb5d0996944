using System.IO.Compression;
using Trainer.Data;

namespace Trainer.Recipes.Checkpoints;

/// <summary>
/// Checks what a zip archive's central directory declares (checkpoints, PyTorch .pth files)
/// before any entry is read: every entry must fit in the file, may not claim more bytes than
/// deflate can expand its compressed data to, and all of them together must fit in this
/// machine's memory. A damaged or crafted file is refused in one line, before anything is allocated.
/// </summary>
internal static class ZipLimits
{
    /// <summary>Deflate expands at most about 1032 to 1; stored entries not at all.</summary>
    const long MaxRatio = 1100;
    /// <summary>Room for tiny entries (a few bytes of deflate header can stand for a few KB).</summary>
    const long Slack = 64 * 1024;

    public static void Check(ZipArchive zip, string path, long fileLength)
    {
        long total = 0;
        foreach (var entry in zip.Entries)
        {
            long packed = entry.CompressedLength, size = entry.Length;
            if (packed < 0 || packed > fileLength)
                throw new BadInputException($"{path}: zip entry '{entry.FullName}' declares {packed:N0} compressed bytes in a {fileLength:N0}-byte file (damaged or crafted); refused");
            if (size < 0 || size > packed * MaxRatio + Slack)
                throw new BadInputException($"{path}: zip entry '{entry.FullName}' declares {size:N0} bytes from {packed:N0} compressed bytes, more than compression can produce (damaged or crafted); refused before reading");
            total += size;
        }
        long memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (memory > 0 && total > memory)
            throw new BadInputException($"{path}: its zip entries declare {total:N0} bytes in all, more than this machine's {memory:N0} bytes of memory; refused before reading");
    }

    /// <summary>Opens <paramref name="path"/> as a zip archive and checks it; the caller disposes the archive.</summary>
    public static ZipArchive OpenChecked(string path)
    {
        var zip = ZipFile.OpenRead(path);
        try
        {
            Check(zip, path, new FileInfo(path).Length);
            return zip;
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }
}
