using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace Trainer.Data.Cifar;

/// <summary>The network could not deliver the archive; the message says where to put the files instead.</summary>
public sealed class DownloadUnavailableException(string message) : Exception(message);

/// <summary>
/// Fetches the official CIFAR binary archive, checks its MD5 against the published one, and
/// extracts the record files under the chosen folder (dir/cifar-10-batches-bin/...).
/// </summary>
public static class CifarDownloader
{
    public sealed record Archive(string Url, string Md5);

    public static Archive OfficialArchive(CifarFormat format) => format.Name == "cifar10"
        ? new("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")
        : new("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8");

    /// <summary>Downloads (unless the files are already there) and returns the extracted folder.</summary>
    public static string Download(CifarFormat format, string dir, Archive archive, TextWriter log, TimeSpan? timeout = null)
    {
        var folder = Path.Combine(dir, format.FolderName);
        var expected = format.TrainFiles.Concat(format.TestFiles).Select(f => Path.Combine(folder, f)).ToList();
        if (expected.All(File.Exists))
        {
            log.WriteLine($"{format.Name} is already in {folder}");
            return folder;
        }
        Directory.CreateDirectory(dir);
        var archivePath = Path.Combine(dir, Path.GetFileName(new Uri(archive.Url).AbsolutePath));
        var partial = archivePath + ".part";
        try
        {
            log.WriteLine($"fetching {archive.Url}");
            using var http = new HttpClient { Timeout = timeout ?? TimeSpan.FromMinutes(30) };
            using var response = http.GetAsync(archive.Url, HttpCompletionOption.ResponseHeadersRead).GetAwaiter().GetResult();
            response.EnsureSuccessStatusCode();
            using (var body = response.Content.ReadAsStream())
            using (var file = File.Create(partial))
                body.CopyTo(file);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            File.Delete(partial);
            throw new DownloadUnavailableException($"could not fetch {archive.Url} ({e.Message}); {CifarFolder.LayoutHint(format, dir, suggestDownload: false)}");
        }
        var md5 = Md5Of(partial);
        if (!string.Equals(md5, archive.Md5, StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(partial);
            throw new BadInputException($"{archive.Url}: MD5 {md5} does not match the published {archive.Md5}; the download was discarded");
        }
        File.Move(partial, archivePath, overwrite: true);
        Extract(archivePath, dir, format.FolderName);
        var missing = expected.Where(f => !File.Exists(f)).ToList();
        if (missing.Count > 0) throw new BadInputException($"{archivePath} did not contain {string.Join(", ", missing.Select(Path.GetFileName))}");
        log.WriteLine($"verified MD5 {md5}; extracted to {folder}");
        return folder;
    }

    public static string Md5Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(stream));
    }

    /// <summary>Extracts regular files under <paramref name="folderName"/> only; no path leaves <paramref name="dir"/>.</summary>
    static void Extract(string archivePath, string dir, string folderName)
    {
        var root = Path.GetFullPath(dir);
        using var gzip = new GZipStream(File.OpenRead(archivePath), CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
            var target = Path.GetFullPath(Path.Combine(root, entry.Name));
            if (!target.StartsWith(Path.Combine(root, folderName) + Path.DirectorySeparatorChar, StringComparison.Ordinal)) continue;
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            entry.ExtractToFile(target, overwrite: true);
        }
    }
}
