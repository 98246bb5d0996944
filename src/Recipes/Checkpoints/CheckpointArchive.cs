using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Trainer.Recipes.Checkpoints;

/// <summary>
/// The zip a checkpoint is, with two layers of integrity (format trainer-checkpoint/2):
/// checksums.json holds the SHA-256 of every other entry's content (so an extracted
/// model.safetensors can be checked too), and the zip comment, the last bytes of the file, is a
/// seal "trainer-sha256:HEX" whose HEX is the SHA-256 of every byte before it, so a byte changed
/// anywhere (entry data, zip headers, the central directory) or a cut-short file is caught before
/// anything is parsed.
/// </summary>
internal static class CheckpointArchive
{
    public const string ChecksumsEntry = "checksums.json";
    const string SealPrefix = "trainer-sha256:";
    const int HexLength = 64;
    const long SmallEntryAllowance = 64L << 20;

    sealed record Checksums(string Algorithm, SortedDictionary<string, string> Entries);

    /// <summary>Writes the entries (name, how to write it, whether to compress) and the checksums, then seals the file.</summary>
    public static void Write(FileStream file, IEnumerable<(string Name, Action<Stream> Write, bool Compress)> entries)
    {
        using (var zip = new ZipArchive(file, ZipArchiveMode.Create, leaveOpen: true, Encoding.UTF8))
        {
            var sums = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var (name, write, compress) in entries)
            {
                using var stream = zip.CreateEntry(name, compress ? CompressionLevel.Optimal : CompressionLevel.NoCompression).Open();
                using var hashing = new HashingStream(stream);
                write(hashing);
                sums[name] = hashing.Hex();
            }
            using (var stream = zip.CreateEntry(ChecksumsEntry, CompressionLevel.Optimal).Open())
                JsonSerializer.Serialize(stream, new Checksums("sha256", sums), Checkpoint.Json);
            zip.Comment = SealPrefix + new string('0', HexLength);
        }
        long hashed = file.Length - HexLength;
        var tail = new byte[SealPrefix.Length + HexLength];
        file.Position = file.Length - tail.Length;
        file.ReadExactly(tail);
        if (Encoding.ASCII.GetString(tail) != SealPrefix + new string('0', HexLength))
            throw new InvalidOperationException("the zip comment did not end the checkpoint file; cannot seal it");
        var seal = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(HashOf(file, hashed)));
        file.Position = hashed;
        file.Write(seal);
    }

    /// <summary>
    /// Every entry's content, by name, after checking the seal where the file has one; <c>Sealed</c>
    /// says whether it had. Anything unreadable is an InvalidDataException with a reason for the user.
    /// </summary>
    public static (Dictionary<string, byte[]> Entries, bool Sealed) Read(string path)
    {
        using var file = File.OpenRead(path);
        bool isSealed = VerifySeal(file);
        file.Position = 0;
        ZipArchive zip;
        try { zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true, Encoding.UTF8); }
        catch (InvalidDataException e) { throw new InvalidDataException($"it is not a zip archive, or it was cut short ({e.Message})"); }
        using var _ = zip;
        ZipLimits.Check(zip, path, file.Length);
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var entry in zip.Entries)
        {
            if (entries.ContainsKey(entry.FullName)) throw new InvalidDataException($"it holds {entry.FullName} twice");
            entries[entry.FullName] = Content(entry, file.Length);
        }
        return (entries, isSealed);
    }

    /// <summary>Checks that checksums.json lists every other entry with its SHA-256.</summary>
    public static void VerifyChecksums(Dictionary<string, byte[]> entries)
    {
        if (!entries.TryGetValue(ChecksumsEntry, out var json)) throw new InvalidDataException($"it has no {ChecksumsEntry}");
        var sums = JsonSerializer.Deserialize<Checksums>(json, Checkpoint.Json);
        if (sums?.Entries is null || sums.Algorithm != "sha256") throw new InvalidDataException($"{ChecksumsEntry} names no SHA-256 checksums");
        foreach (var (name, content) in entries)
        {
            if (name == ChecksumsEntry) continue;
            if (!sums.Entries.TryGetValue(name, out var expected)) throw new InvalidDataException($"{name} has no checksum in {ChecksumsEntry}");
            if (!string.Equals(expected, Convert.ToHexStringLower(SHA256.HashData(content)), StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"{name} is damaged (its SHA-256 does not match {ChecksumsEntry})");
        }
        if (sums.Entries.Keys.FirstOrDefault(k => !entries.ContainsKey(k)) is { } missing) throw new InvalidDataException($"{missing} is missing");
    }

    static bool VerifySeal(FileStream file)
    {
        var tail = new byte[SealPrefix.Length + HexLength];
        if (file.Length < tail.Length) return false;
        file.Position = file.Length - tail.Length;
        file.ReadExactly(tail);
        var text = Encoding.ASCII.GetString(tail);
        if (!text.StartsWith(SealPrefix, StringComparison.Ordinal)) return false;
        var expected = text[SealPrefix.Length..];
        if (!string.Equals(expected, Convert.ToHexStringLower(HashOf(file, file.Length - HexLength)), StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException("it is damaged (its SHA-256 seal does not match its bytes: changed or cut short)");
        return true;
    }

    static byte[] HashOf(FileStream file, long count)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        file.Position = 0;
        for (long left = count; left > 0;)
        {
            int read = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (read == 0) throw new EndOfStreamException();
            hash.AppendData(buffer, 0, read);
            left -= read;
        }
        return hash.GetHashAndReset();
    }

    /// <summary>An entry's bytes, refusing sizes the file cannot hold (stored tensors are never larger than the file; JSON compresses).</summary>
    static byte[] Content(ZipArchiveEntry entry, long fileLength)
    {
        long limit = Math.Min(Array.MaxLength, 2 * fileLength + SmallEntryAllowance);
        if (entry.Length < 0 || entry.Length > limit)
            throw new InvalidDataException($"{entry.FullName} claims {entry.Length:N0} bytes, more than a {fileLength:N0}-byte file can hold");
        var content = new byte[entry.Length];
        using var stream = entry.Open();
        stream.ReadExactly(content);
        if (stream.ReadByte() != -1) throw new InvalidDataException($"{entry.FullName} is longer than its zip header says");
        return content;
    }

    /// <summary>The exceptions a damaged or foreign file can raise in the zip and JSON readers.</summary>
    public static bool IsUnreadable(Exception e) => e is InvalidDataException or JsonException or IOException or UnauthorizedAccessException
        or NotSupportedException or FormatException or OverflowException or ArgumentException or InvalidOperationException or KeyNotFoundException;

    /// <summary>Passes writes through and hashes them (SHA-256).</summary>
    sealed class HashingStream(Stream inner) : Stream
    {
        readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        public string Hex() => Convert.ToHexStringLower(_hash.GetHashAndReset());
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.AppendData(buffer);
            inner.Write(buffer);
        }
        public override void WriteByte(byte value) => Write([value]);
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}
