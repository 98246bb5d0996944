using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using Trainer.Recipes.Storage;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// A crash can leave the files a run appends to with half a line (CSV) or half a record
/// (TensorBoard). On resume the sinks cut them back to what is whole and, for the CSV files, to what
/// the checkpoint covers, so every file stays readable and no row appears twice. Never fatal: a
/// file that cannot be repaired is left as it is.
/// </summary>
internal static class RunFileRepair
{
    /// <summary>
    /// Keeps the header and the complete rows of numbers whose <paramref name="keyColumn"/> is at
    /// most <paramref name="last"/>; drops a trailing line without its newline and any row that does
    /// not parse. Rewrites the file (atomically) only when something was dropped; returns how many rows were.
    /// </summary>
    public static int TrimCsv(string path, string keyColumn, long last)
    {
        return Safely(() =>
        {
            if (!File.Exists(path)) return 0;
            var text = File.ReadAllText(path);
            var lines = text.Split('\n');
            // Whole lines end in '\n': the piece after the last one is a torn line (or empty).
            var whole = lines[..^1];
            if (whole.Length == 0)
            {
                if (text.Length > 0) DurableFile.WriteAllText(path, "");
                return 0;
            }
            var header = whole[0].TrimEnd('\r').Split(',');
            int key = Array.IndexOf(header, keyColumn);
            if (key < 0) return 0;
            var kept = new List<string> { whole[0] };
            foreach (var line in whole.Skip(1))
            {
                var fields = line.TrimEnd('\r').Split(',');
                if (fields.Length == header.Length && fields.All(IsNumberOrEmpty)
                    && long.TryParse(fields[key], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value <= last)
                    kept.Add(line);
            }
            int dropped = whole.Length - kept.Count;
            if (dropped > 0 || lines[^1].Length > 0) DurableFile.WriteAllText(path, string.Concat(kept.Select(l => l + "\n")));
            return dropped + (lines[^1].Length > 0 ? 1 : 0);
        });
    }

    static bool IsNumberOrEmpty(string field) =>
        field.Length == 0 || double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    /// <summary>
    /// Cuts a TensorBoard event file (TFRecord framing: uint64 length, masked CRC-32C of it, the data,
    /// masked CRC-32C of the data) at its first record that is incomplete or fails a CRC. Returns the bytes cut.
    /// </summary>
    public static long TrimEventFile(string path)
    {
        return Safely(() =>
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            long length = file.Length, whole = 0;
            var frame = new byte[12];
            var footer = new byte[4];
            while (length - whole >= 16)
            {
                file.Position = whole;
                file.ReadExactly(frame);
                ulong size = BinaryPrimitives.ReadUInt64LittleEndian(frame);
                if (MaskedCrc(frame.AsSpan(0, 8)) != BinaryPrimitives.ReadUInt32LittleEndian(frame.AsSpan(8))) break;
                if (size > (ulong)(length - whole - 16) || size > int.MaxValue) break;
                var data = new byte[size];
                file.ReadExactly(data);
                file.ReadExactly(footer);
                if (MaskedCrc(data) != BinaryPrimitives.ReadUInt32LittleEndian(footer)) break;
                whole += 16 + (long)size;
            }
            if (whole == length) return 0L;
            file.SetLength(whole);
            file.Flush(flushToDisk: true);
            return length - whole;
        });
    }

    /// <summary>TFRecord's masked CRC-32C (Castagnoli): rotated right by 15 bits, plus a constant.</summary>
    public static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8) crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++) crc = BitOperations.Crc32C(crc, data[i]);
        crc = ~crc;
        return ((crc >> 15) | (crc << 17)) + 0xA282EAD8;
    }

    static T Safely<T>(Func<T> repair) where T : struct
    {
        try { return repair(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DiskFullException) { return default; }
    }
}
