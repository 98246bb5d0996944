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
            var dtypeName = (string?)node["dtype"];
            var dtype = Names.FirstOrDefault(kv => kv.Value == dtypeName).Key;
            if (dtypeName is null || !Names.ContainsValue(dtypeName)) throw new InvalidDataException($"{name}: tensor '{key}' has unsupported dtype '{dtypeName}'");
            var shape = node["shape"]!.AsArray().Select(d => (long)d!).ToArray();
            var offsets = node["data_offsets"]!.AsArray().Select(d => (long)d!).ToArray();
            var tensor = empty(shape, dtype);
            if (offsets[1] - offsets[0] != tensor.bytes.Length || dataStart + offsets[1] > bytes.Length)
                throw new InvalidDataException($"{name}: tensor '{key}' has {offsets[1] - offsets[0]} bytes for shape [{string.Join(", ", shape)}] {dtypeName}");
            tensor.bytes = bytes.Slice(dataStart + (int)offsets[0], (int)(offsets[1] - offsets[0]));
            result[key] = tensor;
        }
        return result;
    }
}
