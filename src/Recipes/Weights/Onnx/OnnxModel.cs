using System.Runtime.InteropServices;
using Google.Protobuf;
using global::Onnx;
using Trainer.Data;
using static TorchSharp.torch;

namespace Trainer.Recipes.Weights.Onnx;

/// <summary>An attribute of a node: whichever of an int, a float, a string, ints or floats it holds.</summary>
internal sealed record OnnxAttribute(string Name, long? Int, float? Float, string? String, long[] Ints, float[] Floats);

/// <summary>One operator of the graph: its type, the tensors it reads and writes (by name), its attributes.</summary>
internal sealed record OnnxNode(string Name, string OpType, string[] Inputs, string[] Outputs, IReadOnlyDictionary<string, OnnxAttribute> Attributes)
{
    public long Int(string name, long fallback) => Attributes.TryGetValue(name, out var a) && a.Int is { } v ? v : fallback;
    public float Float(string name, float fallback) => Attributes.TryGetValue(name, out var a) && a.Float is { } v ? v : fallback;
    public string? String(string name) => Attributes.TryGetValue(name, out var a) ? a.String : null;
    public long[] Ints(string name, long[] fallback) => Attributes.TryGetValue(name, out var a) && a.Ints.Length > 0 ? a.Ints : fallback;

    /// <summary>"Conv 'Convolution249' (Input247 -> Convolution249_Output_0)": for error messages.</summary>
    public override string ToString() => $"{OpType} '{Name}' ({string.Join(", ", Inputs)} -> {string.Join(", ", Outputs)})";
}

/// <summary>A graph input or output: its name and shape (-1 where a dimension is symbolic or unknown).</summary>
internal sealed record OnnxValue(string Name, long[] Shape);

/// <summary>The computation: nodes in file order, float initializers (the weights) by name, inputs and outputs.</summary>
internal sealed record OnnxGraph(string Name, IReadOnlyList<OnnxNode> Nodes, IReadOnlyDictionary<string, Tensor> Initializers,
    IReadOnlyDictionary<string, int> OtherInitializers, IReadOnlyList<OnnxValue> Inputs, IReadOnlyList<OnnxValue> Outputs)
{
    /// <summary>The inputs that are not initializers: what the caller feeds.</summary>
    public IEnumerable<OnnxValue> DataInputs => Inputs.Where(i => !Initializers.ContainsKey(i.Name) && !OtherInitializers.ContainsKey(i.Name));
}

/// <summary>
/// An ONNX model file read through ONNX's own message types (generated from onnx.proto, see
/// src/Models/Onnx/Proto): the producer, the default-domain opset, the metadata, and the graph with
/// its float initializers as CPU tensors. Initializers of other element types are listed by name (with their ONNX data
/// type) but not read. Owns the initializer tensors.
/// </summary>
internal sealed class OnnxModel : IDisposable
{
    const int FloatType = 1;

    public required string Path { get; init; }
    public long IrVersion { get; init; }
    public string ProducerName { get; init; } = "";
    public string ProducerVersion { get; init; } = "";
    /// <summary>The opset of the default ("" or "ai.onnx") domain; 0 when the file names none.</summary>
    public long Opset { get; init; }
    public required OnnxGraph Graph { get; init; }
    /// <summary>The model's metadata_props (key -> value).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>"CNTK 2.6, opset 8".</summary>
    public string Producer => $"{(ProducerName.Length > 0 ? ProducerName : "unknown producer")}{(ProducerVersion.Length > 0 ? " " + ProducerVersion : "")}, opset {Opset}";

    public void Dispose()
    {
        foreach (var t in Graph.Initializers.Values) t.Dispose();
    }

    /// <summary>Reads <paramref name="path"/>; anything that is not a readable ONNX model with a graph is bad input naming the file.</summary>
    public static OnnxModel Read(string path)
    {
        var proto = ReadProto(path);
        var disposeOnFailure = new List<Tensor>();
        try
        {
            return FromProto(proto, path, disposeOnFailure);
        }
        catch (InvalidDataException e)
        {
            foreach (var t in disposeOnFailure) t.Dispose();
            throw Unreadable(path, e);
        }
    }

    /// <summary>
    /// The file as ONNX's own message type (generated from onnx.proto), with an IR version and a
    /// graph; anything else (missing, unreadable, not protobuf, no graph) is bad input naming the file.
    /// </summary>
    public static ModelProto ReadProto(string path)
    {
        if (Directory.Exists(path)) throw new BadInputException($"ONNX model {path} is a folder, not a file");
        if (!File.Exists(path)) throw new BadInputException($"ONNX model {path} does not exist");
        long size = new FileInfo(path).Length;
        // Protobuf messages are limited to 2 GB; larger ONNX models keep their weights in external files.
        if (size > int.MaxValue) throw new BadInputException($"{path} is {size:N0} bytes, more than an ONNX protobuf can hold (external weight files are not supported)");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new BadInputException($"cannot read ONNX model {path}: {e.Message}"); }
        try
        {
            var model = Parse(bytes);
            if (model.IrVersion <= 0) throw new InvalidDataException("no IR version (not an ONNX file?)");
            if (model.Graph is null || model.Graph.Node.Count == 0) throw new InvalidDataException("no graph (not an ONNX file?)");
            return model;
        }
        catch (Exception e) when (e is InvalidDataException or InvalidProtocolBufferException)
        {
            throw Unreadable(path, e);
        }
    }

    static BadInputException Unreadable(string path, Exception e)
    {
        var reason = e is InvalidProtocolBufferException ? "malformed protobuf (" + e.Message.Split(". ")[0].TrimEnd('.') + ")" : e.Message;
        return new BadInputException(OneLine($"{path} is not a readable ONNX model: {reason}"));
    }

    /// <summary>The file as ONNX's own message type (generated from onnx.proto); a file that is no protobuf at all throws InvalidProtocolBufferException.</summary>
    public static ModelProto Parse(byte[] bytes) => ModelProto.Parser.ParseFrom(bytes);

    /// <summary>Control characters (a corrupt file's names may hold any) shown as '?', so an error stays one line.</summary>
    internal static string OneLine(string message) => string.Concat(message.Select(c => char.IsControl(c) ? '?' : c));

    static OnnxModel FromProto(ModelProto model, string path, List<Tensor> tensors)
    {
        long opset = model.OpsetImport.LastOrDefault(o => o.Domain is "" or "ai.onnx")?.Version ?? 0;
        return new OnnxModel
        {
            Path = path, IrVersion = model.IrVersion, ProducerName = model.ProducerName, ProducerVersion = model.ProducerVersion,
            Opset = opset, Graph = ReadGraph(model.Graph, tensors),
            Metadata = model.MetadataProps.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Last().Value),
        };
    }

    static OnnxGraph ReadGraph(GraphProto graph, List<Tensor> tensors)
    {
        var initializers = new Dictionary<string, Tensor>();
        var others = new Dictionary<string, int>();
        foreach (var proto in graph.Initializer)
        {
            if (initializers.ContainsKey(proto.Name) || others.ContainsKey(proto.Name))
                throw new InvalidDataException($"initializer '{proto.Name}' appears twice");
            var tensor = ReadTensor(proto);
            if (tensor is null) others[proto.Name] = proto.DataType;
            else
            {
                tensors.Add(tensor);
                initializers[proto.Name] = tensor;
            }
        }
        var nodes = graph.Node.Select(ReadNode).ToList();
        return new OnnxGraph(graph.Name, nodes, initializers, others, graph.Input.Select(ReadValue).ToList(), graph.Output.Select(ReadValue).ToList());
    }

    static OnnxNode ReadNode(NodeProto node)
    {
        if (node.OpType.Length == 0) throw new InvalidDataException($"node '{node.Name}' has no operator type");
        var attributes = new Dictionary<string, OnnxAttribute>();
        foreach (var a in node.Attribute)
            attributes[a.Name] = new OnnxAttribute(a.Name, a.HasI ? a.I : null, a.HasF ? a.F : null, a.HasS ? a.S.ToStringUtf8() : null, [.. a.Ints], [.. a.Floats]);
        return new OnnxNode(node.Name, node.OpType, [.. node.Input], [.. node.Output], attributes);
    }

    /// <summary>A graph input or output: dim_value per dimension, -1 for a dim_param or a missing value.</summary>
    static OnnxValue ReadValue(ValueInfoProto value)
    {
        var dims = value.Type?.TensorType?.Shape?.Dim;
        return new OnnxValue(value.Name, dims is null ? [] : dims.Select(d => d.HasDimValue ? d.DimValue : -1).ToArray());
    }

    /// <summary>A float TensorProto as a CPU tensor; null for other element types.</summary>
    static Tensor? ReadTensor(TensorProto proto)
    {
        var name = proto.Name;
        if (proto.Segment is not null) throw new InvalidDataException("a tensor is split into segments, which is not supported");
        if (proto.HasDataLocation && proto.DataLocation == TensorProto.Types.DataLocation.External)
            throw new InvalidDataException($"initializer '{name}' keeps its data in an external file, which is not supported");
        if (proto.DataType != FloatType) return null;
        var dims = proto.Dims;
        long count = 1;
        long available = proto.HasRawData ? proto.RawData.Length / 4 : proto.FloatData.Count;
        foreach (var d in dims)
        {
            if (d < 0) throw new InvalidDataException($"initializer '{name}' has a negative dimension ({string.Join("x", dims)})");
            // More values than the file holds is a corrupt header, not a reason to allocate.
            if (d > 0 && count > Math.Max(available, 1) / d) throw new InvalidDataException($"initializer '{name}' declares dimensions {string.Join("x", dims)}, more values than the file holds");
            count *= d;
        }
        long held = proto.HasRawData ? proto.RawData.Length : proto.FloatData.Count * 4L;
        if (held != count * 4)
            throw new InvalidDataException($"initializer '{name}' ({string.Join("x", dims)}) holds {held / 4.0:N0} floats, expected {count:N0}");
        // Owned by the model, not by a dispose scope the caller may have open.
        var result = empty([.. dims], ScalarType.Float32).DetachFromDisposeScope();
        if (count > 0) result.bytes = proto.HasRawData ? proto.RawData.ToByteArray() : MemoryMarshal.AsBytes(proto.FloatData.ToArray().AsSpan()).ToArray();
        return result;
    }
}
