using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Trainer.Recipes.Checkpoints;

/// <summary>
/// Named tensors in the safetensors layout (an 8-byte little-endian header length, a JSON header
/// of dtype, shape and byte offsets, then the raw little-endian data), which PyTorch's
/// safetensors package reads as it is.
/// </summary>
public static class SafeTensors
{
    static readonly Dictionary<ScalarType, string> Names = new()
    {
        [ScalarType.Float32] = "F32", [ScalarType.Float64] = "F64", [ScalarType.Float16] = "F16",
        [ScalarType.BFloat16] = "BF16", [ScalarType.Int64] = "I64", [ScalarType.Int32] = "I32",
        [ScalarType.Int16] = "I16", [ScalarType.Int8] = "I8", [ScalarType.Byte] = "U8", [ScalarType.Bool] = "BOOL",
    };

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
                ["dtype"] = Names[cpu.dtype],
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
        using var memory = new MemoryStream();
        input.CopyTo(memory);
        var bytes = memory.GetBuffer().AsSpan(0, (int)memory.Length);
        if (bytes.Length < 8) throw new InvalidDataException($"{name}: too short for a safetensors file");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)bytes.Length - 8) throw new InvalidDataException($"{name}: header length {headerLength} runs past the end of the file");
        var header = JsonNode.Parse(bytes.Slice(8, (int)headerLength)) as JsonObject
            ?? throw new InvalidDataException($"{name}: the header is not a JSON object");
        var dataStart = 8 + (int)headerLength;
        var result = new Dictionary<string, Tensor>();
        foreach (var (key, node) in header)
        {
            if (key == "__metadata__" || node is null) continue;
            if (node is not JsonObject) throw new InvalidDataException($"{name}: the header entry of tensor '{key}' is not a JSON object");
            var dtypeName = node["dtype"] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
            var dtype = Names.FirstOrDefault(kv => kv.Value == dtypeName).Key;
            if (dtypeName is null || !Names.ContainsValue(dtypeName)) throw new InvalidDataException($"{name}: tensor '{key}' has unsupported dtype '{dtypeName}'");
            var shape = Longs(node, "shape", name, key);
            var offsets = Longs(node, "data_offsets", name, key);
            // The declared shape must match the bytes that are there before anything is allocated for it.
            long? declared = DeclaredBytes(shape, dtype);
            if (declared is null || offsets.Length != 2 || offsets[0] < 0 || offsets[1] > bytes.Length - dataStart || offsets[1] - offsets[0] != declared)
                throw new InvalidDataException($"{name}: tensor '{key}' has {(offsets.Length == 2 ? offsets[1] - offsets[0] : 0)} bytes for shape [{string.Join(", ", shape)}] {dtypeName}");
            var tensor = empty(shape, dtype);
            tensor.bytes = bytes.Slice(dataStart + (int)offsets[0], (int)(offsets[1] - offsets[0]));
            result[key] = tensor;
        }
        return result;
    }

    /// <summary>A list of integers from the header; anything else is a damaged file.</summary>
    static long[] Longs(JsonNode node, string field, string name, string key)
    {
        try { return node[field]?.AsArray().Select(d => (long)d!).ToArray() ?? throw new InvalidDataException($"{name}: tensor '{key}' has no {field}"); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
        {
            throw new InvalidDataException($"{name}: tensor '{key}' has a {field} that is not a list of integers");
        }
    }

    /// <summary>Bytes of a tensor of <paramref name="shape"/>; null for a negative dimension or a size past any file.</summary>
    static long? DeclaredBytes(long[] shape, ScalarType dtype)
    {
        long bytes = dtype switch
        {
            ScalarType.Float64 or ScalarType.Int64 => 8,
            ScalarType.Float32 or ScalarType.Int32 => 4,
            ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
            _ => 1,
        };
        foreach (var d in shape)
        {
            if (d < 0 || (d > 0 && bytes > int.MaxValue / d)) return null;
            bytes *= d;
        }
        return bytes;
    }
}
