using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Trainer.Recipes.Checkpoints;

/// <summary>Where one tensor of a safetensors file lies: its dtype, shape and byte range in the data section.</summary>
internal sealed record TensorLayout(string Name, ScalarType Dtype, long[] Shape, long Begin, long End);

/// <summary>
/// Named tensors in the safetensors layout (an 8-byte little-endian header length, a JSON header
/// of dtype, shape and byte offsets, then the raw little-endian data), which PyTorch's
/// safetensors package reads as it is. Reading checks the whole header first (known dtypes, shapes
/// whose size matches their byte range, ranges inside the data that tile it without gaps or
/// overlaps, as the format requires), so a damaged or foreign file is refused before any tensor is
/// allocated.
/// </summary>
internal static class SafeTensors
{
    static readonly Dictionary<ScalarType, (string Name, int Size)> Types = new()
    {
        [ScalarType.Float32] = ("F32", 4), [ScalarType.Float64] = ("F64", 8), [ScalarType.Float16] = ("F16", 2),
        [ScalarType.BFloat16] = ("BF16", 2), [ScalarType.Int64] = ("I64", 8), [ScalarType.Int32] = ("I32", 4),
        [ScalarType.Int16] = ("I16", 2), [ScalarType.Int8] = ("I8", 1), [ScalarType.Byte] = ("U8", 1), [ScalarType.Bool] = ("BOOL", 1),
    };
    static readonly Dictionary<string, ScalarType> ByName = Types.ToDictionary(t => t.Value.Name, t => t.Key);

    /// <summary>The reference implementation's limit on the JSON header.</summary>
    const long MaxHeaderBytes = 100_000_000;
    const int MaxDimensions = 64;

    public static void Write(Stream output, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var header = new JsonObject();
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (name, tensor) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            using var cpu = tensor.detach().cpu().contiguous();
            var data = cpu.bytes.ToArray();
            header[name] = new JsonObject
            {
                ["dtype"] = Types[cpu.dtype].Name,
                ["shape"] = new JsonArray(cpu.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + data.Length),
            };
            blobs.Add(data);
            offset += data.Length;
        }
        var headerBytes = JsonSerializer.SerializeToUtf8Bytes(header);
        // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
        int padded = (headerBytes.Length + 7) / 8 * 8;
        var lengthBytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)padded);
        output.Write(lengthBytes);
        output.Write(headerBytes);
        for (int i = headerBytes.Length; i < padded; i++) output.WriteByte((byte)' ');
        foreach (var blob in blobs) output.Write(blob);
    }

    /// <summary>Reads every tensor (on the CPU); <paramref name="name"/> names the source in errors.</summary>
    public static Dictionary<string, Tensor> Read(Stream input, string name)
    {
        if (input.CanSeek && input.Length - input.Position > Array.MaxLength)
            throw new InvalidDataException($"{name}: {input.Length:N0} bytes, more than trainer reads into memory");
        using var memory = new MemoryStream();
        input.CopyTo(memory);
        var bytes = memory.GetBuffer().AsSpan(0, (int)memory.Length);
        return Read(bytes, name);
    }

    /// <summary>Checks the header of <paramref name="bytes"/>, then reads its tensors.</summary>
    public static Dictionary<string, Tensor> Read(Span<byte> bytes, string name) => Materialize(bytes, Layout(bytes, name));

    /// <summary>
    /// The tensors of a safetensors file as the header describes them, every claim checked against
    /// the file; nothing is allocated. Anything wrong is an InvalidDataException starting with <paramref name="name"/>.
    /// </summary>
    public static IReadOnlyList<TensorLayout> Layout(ReadOnlySpan<byte> bytes, string name)
    {
        if (bytes.Length < 8) throw new InvalidDataException($"{name}: {bytes.Length} bytes, too short for a safetensors file");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)bytes.Length - 8 || headerLength > MaxHeaderBytes)
            throw new InvalidDataException($"{name}: its header length {headerLength} runs past the end of the {bytes.Length}-byte file");
        long dataLength = bytes.Length - 8 - (long)headerLength;
        JsonDocument document;
        try { document = JsonDocument.Parse(bytes.Slice(8, (int)headerLength).ToArray()); }
        catch (JsonException e) { throw new InvalidDataException($"{name}: the header is not valid JSON ({e.Message})"); }
        using var _ = document;
        if (document.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{name}: the header is not a JSON object");

        var layouts = new List<TensorLayout>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (!seen.Add(property.Name)) throw new InvalidDataException($"{name}: tensor '{property.Name}' appears twice in the header");
            if (property.Name == "__metadata__") continue;
            layouts.Add(Describe(property.Name, property.Value, dataLength, name));
        }
        // The format stores tensors back to back: every data byte belongs to exactly one tensor.
        long expected = 0;
        foreach (var t in layouts.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin != expected)
                throw new InvalidDataException($"{name}: tensor '{t.Name}' starts at byte {t.Begin}, expected {expected} (tensors overlap or leave a gap)");
            expected = t.End;
        }
        if (expected != dataLength)
            throw new InvalidDataException($"{name}: the tensors cover {expected} of its {dataLength} data bytes");
        return layouts;
    }

    static TensorLayout Describe(string key, JsonElement entry, long dataLength, string name)
    {
        InvalidDataException Bad(string what) => new($"{name}: tensor '{key}' {what}");
        if (entry.ValueKind != JsonValueKind.Object) throw Bad("is not described by a JSON object");
        if (!entry.TryGetProperty("dtype", out var dtypeNode) || dtypeNode.ValueKind != JsonValueKind.String) throw Bad("has no dtype");
        var dtypeName = dtypeNode.GetString()!;
        if (!ByName.TryGetValue(dtypeName, out var dtype)) throw Bad($"has unsupported dtype '{dtypeName}'");
        var shape = Integers(entry, "shape", Bad);
        var offsets = Integers(entry, "data_offsets", Bad);
        if (shape.Length > MaxDimensions) throw Bad($"has {shape.Length} dimensions");
        if (offsets.Length != 2) throw Bad("needs two data_offsets");
        long begin = offsets[0], end = offsets[1];
        if (begin > end || end > dataLength) throw Bad($"lies at bytes [{begin}, {end}), outside the {dataLength} data bytes");
        long size = Types[dtype].Size;
        try { foreach (var d in shape) size = checked(size * d); }
        catch (OverflowException) { throw Bad($"has an impossible shape [{string.Join(", ", shape)}]"); }
        if (size != end - begin)
            throw Bad($"has {end - begin} bytes for shape [{string.Join(", ", shape)}] {dtypeName} ({size} expected)");
        return new TensorLayout(key, dtype, shape, begin, end);
    }

    static long[] Integers(JsonElement entry, string field, Func<string, InvalidDataException> bad)
    {
        if (!entry.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array) throw bad($"has no {field} list");
        var values = new long[array.GetArrayLength()];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var value) || value < 0)
                throw bad($"has a {field} entry that is not a whole number of at least 0: {item.GetRawText()}");
            values[i++] = value;
        }
        return values;
    }

    /// <summary>Allocates and fills the tensors of checked <paramref name="layouts"/>; on failure none is left behind.</summary>
    public static Dictionary<string, Tensor> Materialize(Span<byte> bytes, IReadOnlyList<TensorLayout> layouts)
    {
        int dataStart = bytes.Length - (int)(layouts.Count == 0 ? 0 : layouts.Max(t => t.End));
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var t in layouts)
            {
                var tensor = empty(t.Shape, t.Dtype);
                result[t.Name] = tensor;
                tensor.bytes = bytes.Slice(dataStart + (int)t.Begin, (int)(t.End - t.Begin));
            }
            return result;
        }
        catch
        {
            foreach (var tensor in result.Values) tensor.Dispose();
            throw;
        }
    }
}
