using System.Runtime.InteropServices;
using Google.Protobuf;
using Trainer.Data;
using static TorchSharp.torch;

namespace Trainer.Recipes.Weights.Onnx;

/// <summary>An attribute of a node: whichever of an int, a float, a string, ints or floats it holds.</summary>
public sealed record OnnxAttribute(string Name, long? Int, float? Float, string? String, long[] Ints, float[] Floats);

/// <summary>One operator of the graph: its type, the tensors it reads and writes (by name), its attributes.</summary>
public sealed record OnnxNode(string Name, string OpType, string[] Inputs, string[] Outputs, IReadOnlyDictionary<string, OnnxAttribute> Attributes)
{
    public long Int(string name, long fallback) => Attributes.TryGetValue(name, out var a) && a.Int is { } v ? v : fallback;
    public float Float(string name, float fallback) => Attributes.TryGetValue(name, out var a) && a.Float is { } v ? v : fallback;
    public string? String(string name) => Attributes.TryGetValue(name, out var a) ? a.String : null;
    public long[] Ints(string name, long[] fallback) => Attributes.TryGetValue(name, out var a) && a.Ints.Length > 0 ? a.Ints : fallback;

    /// <summary>"Conv 'Convolution249' (Input247 -> Convolution249_Output_0)": for error messages.</summary>
    public override string ToString() => $"{OpType} '{Name}' ({string.Join(", ", Inputs)} -> {string.Join(", ", Outputs)})";
}

/// <summary>A graph input or output: its name and shape (-1 where a dimension is symbolic or unknown).</summary>
public sealed record OnnxValue(string Name, long[] Shape);

/// <summary>The computation: nodes in file order, float initializers (the weights) by name, inputs and outputs.</summary>
public sealed record OnnxGraph(string Name, IReadOnlyList<OnnxNode> Nodes, IReadOnlyDictionary<string, Tensor> Initializers,
    IReadOnlyDictionary<string, int> OtherInitializers, IReadOnlyList<OnnxValue> Inputs, IReadOnlyList<OnnxValue> Outputs)
{
    /// <summary>The inputs that are not initializers: what the caller feeds.</summary>
    public IEnumerable<OnnxValue> DataInputs => Inputs.Where(i => !Initializers.ContainsKey(i.Name) && !OtherInitializers.ContainsKey(i.Name));
}

/// <summary>
/// An ONNX model file read with a small protobuf reader of our own (no generated code, no ONNX
/// runtime): the producer, the default-domain opset, and the graph with its float initializers as
/// CPU tensors. Initializers of other element types are listed by name (with their ONNX data
/// type) but not read. Owns the initializer tensors.
/// </summary>
public sealed class OnnxModel : IDisposable
{
    const int FloatType = 1;

    public required string Path { get; init; }
    public long IrVersion { get; init; }
    public string ProducerName { get; init; } = "";
    public string ProducerVersion { get; init; } = "";
    /// <summary>The opset of the default ("" or "ai.onnx") domain; 0 when the file names none.</summary>
    public long Opset { get; init; }
    public required OnnxGraph Graph { get; init; }

    /// <summary>"CNTK 2.6, opset 8".</summary>
    public string Producer => $"{(ProducerName.Length > 0 ? ProducerName : "unknown producer")}{(ProducerVersion.Length > 0 ? " " + ProducerVersion : "")}, opset {Opset}";

    public void Dispose()
    {
        foreach (var t in Graph.Initializers.Values) t.Dispose();
    }

    /// <summary>Reads <paramref name="path"/>; anything that is not a readable ONNX model with a graph is bad input naming the file.</summary>
    public static OnnxModel Read(string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"ONNX model {path} does not exist");
        long size = new FileInfo(path).Length;
        // Protobuf messages are limited to 2 GB; larger ONNX models keep their weights in external files.
        if (size > int.MaxValue) throw new BadInputException($"{path} is {size:N0} bytes, more than an ONNX protobuf can hold (external weight files are not supported)");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new BadInputException($"cannot read ONNX model {path}: {e.Message}"); }
        var disposeOnFailure = new List<Tensor>();
        try
        {
            return ReadModel(new ProtoReader(bytes, 0, bytes.Length), path, disposeOnFailure);
        }
        catch (Exception e) when (e is InvalidDataException or InvalidProtocolBufferException)
        {
            foreach (var t in disposeOnFailure) t.Dispose();
            var reason = e is InvalidProtocolBufferException ? "malformed protobuf (" + e.Message.Split(". ")[0].TrimEnd('.') + ")" : e.Message;
            throw new BadInputException(OneLine($"{path} is not a readable ONNX model: {reason}"));
        }
    }

    /// <summary>Control characters (a corrupt file's names may hold any) shown as '?', so an error stays one line.</summary>
    internal static string OneLine(string message) => string.Concat(message.Select(c => char.IsControl(c) ? '?' : c));

    static OnnxModel ReadModel(ProtoReader model, string path, List<Tensor> tensors)
    {
        long irVersion = 0, opset = 0;
        string producer = "", version = "";
        OnnxGraph? graph = null;
        while (model.Next(out int field))
        {
            switch (field)
            {
                case 1: irVersion = model.Int64(); break;
                case 2: producer = model.String(); break;
                case 3: version = model.String(); break;
                case 7: graph = ReadGraph(model.Message(), tensors); break;
                case 8:
                    var (domain, v) = ReadOpset(model.Message());
                    if (domain is "" or "ai.onnx") opset = v;
                    break;
                default: model.Skip(); break;
            }
        }
        if (irVersion <= 0) throw new InvalidDataException("no IR version (not an ONNX file?)");
        if (graph is null || graph.Nodes.Count == 0) throw new InvalidDataException("no graph (not an ONNX file?)");
        return new OnnxModel { Path = path, IrVersion = irVersion, ProducerName = producer, ProducerVersion = version, Opset = opset, Graph = graph };
    }

    static (string Domain, long Version) ReadOpset(ProtoReader opset)
    {
        string domain = "";
        long version = 0;
        while (opset.Next(out int field))
        {
            if (field == 1) domain = opset.String();
            else if (field == 2) version = opset.Int64();
            else opset.Skip();
        }
        return (domain, version);
    }

    static OnnxGraph ReadGraph(ProtoReader graph, List<Tensor> tensors)
    {
        string name = "";
        var nodes = new List<OnnxNode>();
        var initializers = new Dictionary<string, Tensor>();
        var others = new Dictionary<string, int>();
        var inputs = new List<OnnxValue>();
        var outputs = new List<OnnxValue>();
        while (graph.Next(out int field))
        {
            switch (field)
            {
                case 1: nodes.Add(ReadNode(graph.Message())); break;
                case 2: name = graph.String(); break;
                case 5:
                    var (tensorName, type, tensor) = ReadTensor(graph.Message());
                    if (initializers.ContainsKey(tensorName) || others.ContainsKey(tensorName))
                    {
                        tensor?.Dispose();
                        throw new InvalidDataException($"initializer '{tensorName}' appears twice");
                    }
                    if (tensor is null) others[tensorName] = type;
                    else
                    {
                        tensors.Add(tensor);
                        initializers[tensorName] = tensor;
                    }
                    break;
                case 11: inputs.Add(ReadValue(graph.Message())); break;
                case 12: outputs.Add(ReadValue(graph.Message())); break;
                default: graph.Skip(); break;
            }
        }
        return new OnnxGraph(name, nodes, initializers, others, inputs, outputs);
    }

    static OnnxNode ReadNode(ProtoReader node)
    {
        string name = "", opType = "";
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new Dictionary<string, OnnxAttribute>();
        while (node.Next(out int field))
        {
            switch (field)
            {
                case 1: inputs.Add(node.String()); break;
                case 2: outputs.Add(node.String()); break;
                case 3: name = node.String(); break;
                case 4: opType = node.String(); break;
                case 5:
                    var attribute = ReadAttribute(node.Message());
                    attributes[attribute.Name] = attribute;
                    break;
                default: node.Skip(); break;
            }
        }
        if (opType.Length == 0) throw new InvalidDataException($"node '{name}' has no operator type");
        return new OnnxNode(name, opType, [.. inputs], [.. outputs], attributes);
    }

    static OnnxAttribute ReadAttribute(ProtoReader attribute)
    {
        string name = "";
        long? i = null;
        float? f = null;
        string? s = null;
        var ints = new List<long>();
        var floats = new List<float>();
        while (attribute.Next(out int field))
        {
            switch (field)
            {
                case 1: name = attribute.String(); break;
                case 2: f = attribute.Float(); break;
                case 3: i = attribute.Int64(); break;
                case 4: s = attribute.String(); break;
                case 7: floats.AddRange(MemoryMarshal.Cast<byte, float>(attribute.FloatBytes().Span)); break;
                case 8: attribute.AddInt64s(ints); break;
                default: attribute.Skip(); break; // tensors, graphs, string lists, the type tag
            }
        }
        return new OnnxAttribute(name, i, f, s, [.. ints], [.. floats]);
    }

    static OnnxValue ReadValue(ProtoReader value)
    {
        string name = "";
        var shape = new List<long>();
        while (value.Next(out int field))
        {
            if (field == 1) name = value.String();
            else if (field == 2) ReadShape(value.Message(), shape);
            else value.Skip();
        }
        return new OnnxValue(name, [.. shape]);
    }

    /// <summary>TypeProto.tensor_type.shape.dim[*].dim_value (-1 for a dim_param or a missing value).</summary>
    static void ReadShape(ProtoReader type, List<long> shape)
    {
        while (type.Next(out int field))
        {
            if (field != 1) { type.Skip(); continue; }
            var tensorType = type.Message();
            while (tensorType.Next(out int tensorField))
            {
                if (tensorField != 2) { tensorType.Skip(); continue; }
                var dims = tensorType.Message();
                while (dims.Next(out int dimsField))
                {
                    if (dimsField != 1) { dims.Skip(); continue; }
                    var dim = dims.Message();
                    long size = -1;
                    while (dim.Next(out int dimField))
                    {
                        if (dimField == 1) size = dim.Int64();
                        else dim.Skip();
                    }
                    shape.Add(size);
                }
            }
        }
    }

    /// <summary>A TensorProto: its name, its data type, and its values when they are floats (null otherwise).</summary>
    static (string Name, int Type, Tensor? Tensor) ReadTensor(ProtoReader tensor)
    {
        string name = "";
        int type = 0;
        var dims = new List<long>();
        (int Offset, int Length)? raw = null;
        var floats = new FloatData();
        while (tensor.Next(out int field))
        {
            switch (field)
            {
                case 1: tensor.AddInt64s(dims); break;
                case 2: type = (int)tensor.Int64(); break;
                case 3: throw new InvalidDataException("a tensor is split into segments, which is not supported");
                case 4: floats.Add(tensor.FloatBytes()); break;
                case 8: name = tensor.String(); break;
                case 9: raw = tensor.Range(); break;
                case 14:
                    if (tensor.Int64() != 0) throw new InvalidDataException($"initializer '{name}' keeps its data in an external file, which is not supported");
                    break;
                default: tensor.Skip(); break;
            }
        }
        if (type != FloatType) return (name, type, null);
        long count = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new InvalidDataException($"initializer '{name}' has a negative dimension ({string.Join("x", dims)})");
            // More values than the file has bytes for is a corrupt header, not a reason to allocate.
            if (d > 0 && count > tensor.Bytes.Length / 4 / d) throw new InvalidDataException($"initializer '{name}' declares dimensions {string.Join("x", dims)}, more values than the file holds");
            count *= d;
        }
        var data = raw is { } r ? tensor.Bytes.AsSpan(r.Offset, r.Length) : floats.Bytes;
        if (data.Length != count * 4)
            throw new InvalidDataException($"initializer '{name}' ({string.Join("x", dims)}) holds {data.Length / 4:N0} floats, expected {count:N0}");
        // Owned by the model, not by a dispose scope the caller may have open.
        var result = empty([.. dims], ScalarType.Float32).DetachFromDisposeScope();
        if (count > 0) result.bytes = data;
        return (name, type, result);
    }

    /// <summary>TensorProto.float_data as little-endian bytes: the one packed payload every exporter writes, kept where it lies in the file; anything else gathered.</summary>
    sealed class FloatData
    {
        Memory<byte> _first;
        MemoryStream? _gathered;

        public void Add(Memory<byte> chunk)
        {
            if (_gathered is null && _first.IsEmpty)
            {
                _first = chunk;
                return;
            }
            if (_gathered is null)
            {
                _gathered = new MemoryStream();
                _gathered.Write(_first.Span);
            }
            _gathered.Write(chunk.Span);
        }

        public Span<byte> Bytes => _gathered is null ? _first.Span : _gathered.GetBuffer().AsSpan(0, (int)_gathered.Length);
    }
}
