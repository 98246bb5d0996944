using Google.Protobuf;
using Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Models.Onnx;

/// <summary>
/// A module that writes its own inference-mode ONNX nodes, next to its forward code: given the
/// name of its input value, it adds its nodes to the graph and returns the name of its output.
/// </summary>
internal interface IOnnxExportable
{
    string EmitOnnx(OnnxGraphBuilder g, string x);
}

/// <summary>
/// Builds an ONNX graph (the generated <c>Onnx.GraphProto</c>) from a model's modules. TorchSharp's
/// own layers (convolution, BatchNorm, linear, pools, activations, Sequential) are emitted here,
/// once; a model's own blocks emit themselves through <see cref="IOnnxExportable"/>, calling back
/// into these helpers. Weights become initializers named by their state_dict key, so an exported
/// file reads back into the same model key for key. Dropout and stochastic depth are the
/// identity, as in evaluation.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    readonly Dictionary<IntPtr, string> _stateDictNames = new();
    readonly Dictionary<nn.Module, long[]> _inputShapes;
    readonly HashSet<string> _initializerNames = new(StringComparer.Ordinal);
    readonly Dictionary<string, int> _opCounts = new(StringComparer.Ordinal);

    /// <param name="model">Names every parameter and buffer by its state_dict key.</param>
    /// <param name="inputShapes">The input shape each module saw in a probe forward, for the layers whose ONNX form depends on it (adaptive pools).</param>
    public OnnxGraphBuilder(nn.Module model, Dictionary<nn.Module, long[]> inputShapes)
    {
        foreach (var (name, p) in model.named_parameters()) _stateDictNames[p.Handle] = name;
        foreach (var (name, b) in model.named_buffers()) _stateDictNames[b.Handle] = name;
        _inputShapes = inputShapes;
    }

    public GraphProto Graph { get; } = new();

    // ---- values, nodes and initializers ----

    /// <summary>Adds a node of <paramref name="op"/> reading <paramref name="inputs"/>; returns its (single) output's name.</summary>
    public string Node(string op, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        int n = _opCounts[op] = _opCounts.GetValueOrDefault(op) + 1;
        var output = $"{op}_{n}";
        var node = new NodeProto { OpType = op, Name = output };
        foreach (var input in inputs)
        {
            node.Input.Add(input);
        }
        node.Output.Add(output);
        node.Attribute.Add(attributes);
        Graph.Node.Add(node);
        return output;
    }

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    /// <summary>A model tensor (parameter or buffer) as an initializer under its state_dict key, added once however often it is read.</summary>
    public string Weight(Tensor t)
    {
        if (!_stateDictNames.TryGetValue(t.Handle, out var name)) throw new InvalidOperationException("ONNX export: a tensor that is not one of the model's parameters or buffers");
        if (_initializerNames.Add(name)) Graph.Initializer.Add(FloatTensor(name, t));
        return name;
    }

    /// <summary>A float constant computed at export time (folded weights, the preprocessing statistics).</summary>
    public string Constant(string name, Tensor values)
    {
        if (!_initializerNames.Add(name)) throw new InvalidOperationException($"ONNX export: initializer '{name}' written twice");
        Graph.Initializer.Add(FloatTensor(name, values));
        return name;
    }

    /// <summary>A float scalar constant, shared by every node that reads the same value.</summary>
    public string Scalar(float value)
    {
        var name = $"const_{value.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        if (_initializerNames.Add(name))
        {
            var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
            t.FloatData.Add(value);
            Graph.Initializer.Add(t);
        }
        return name;
    }

    /// <summary>An int64 vector constant (shapes, split sizes, pads), shared by value.</summary>
    public string Int64s(params long[] values)
    {
        var name = $"const_i64_{string.Join("_", values).Replace('-', 'm')}";
        if (_initializerNames.Add(name))
        {
            var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
            t.Dims.Add(values.Length);
            t.Int64Data.Add(values);
            Graph.Initializer.Add(t);
        }
        return name;
    }

    static TensorProto FloatTensor(string name, Tensor t)
    {
        using var values = t.detach().to(ScalarType.Float32).cpu().contiguous();
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.Add(values.shape);
        proto.RawData = ByteString.CopyFrom(values.bytes);
        return proto;
    }

    // ---- modules ----

    /// <summary>Emits any module: a block that describes itself, a Sequential (its children in order), or one of TorchSharp's layers.</summary>
    public string Module(nn.Module module, string x) => module switch
    {
        IOnnxExportable own => own.EmitOnnx(this, x),
        Sequential sequential => sequential.named_children().Aggregate(x, (value, child) => Module(child.module, value)),
        Conv2d conv => Conv(conv, x),
        BatchNorm2d bn => BatchNorm(bn, x),
        Linear linear => Linear(linear, x),
        ReLU => Relu(x),
        ReLU6 => Node("Clip", [x, Scalar(0), Scalar(6)]),
        SiLU => Silu(x),
        Tanh => Node("Tanh", [x]),
        Sigmoid => Node("Sigmoid", [x]),
        Dropout or Identity => x,
        MaxPool2d p => MaxPool(x, p.kernel_size, p.stride ?? p.kernel_size, p.padding ?? [0, 0], p.ceil_mode, p.dilation),
        AvgPool2d p when p.divisor_override is null => AveragePool(x, p.kernel_size, p.stride ?? p.kernel_size, p.padding ?? [0, 0], p.ceil_mode, p.count_include_pad),
        AdaptiveAvgPool2d p => AdaptiveAveragePool(p, x),
        Flatten f when f.start_dim == 1 && f.end_dim == -1 => Flatten(x),
        _ => throw new NotSupportedException($"ONNX export has no form for the layer {module.GetType().Name}"),
    };

    public string Conv(Conv2d conv, string x)
    {
        if (conv.padding_mode != TorchSharp.PaddingModes.Zeros) throw new NotSupportedException($"ONNX export: convolution padding mode {conv.padding_mode}");
        long[] padding = conv.padding ?? (conv.padding_type == TorchSharp.Padding.Valid ? [0, 0] : throw new NotSupportedException("ONNX export: 'same' convolution padding"));
        var inputs = new List<string> { x, Weight(conv.weight) };
        if (conv.bias is not null) inputs.Add(Weight(conv.bias));
        return Node("Conv", inputs,
            Ints("kernel_shape", conv.kernel_size), Ints("strides", conv.stride), Ints("dilations", conv.dilation),
            Ints("pads", padding[0], padding[1], padding[0], padding[1]), Int("group", conv.groups));
    }

    /// <summary>BatchNormalization in inference mode (the running statistics).</summary>
    public string BatchNorm(BatchNorm2d bn, string x)
    {
        if (bn.running_mean is null || bn.running_var is null) throw new NotSupportedException("ONNX export: a BatchNorm without running statistics");
        using var unitScale = ones(bn.num_features);
        using var zeroShift = zeros(bn.num_features);
        var scale = bn.weight is null ? Constant($"{Weight(bn.running_mean)}.ones", unitScale) : Weight(bn.weight);
        var bias = bn.bias is null ? Constant($"{Weight(bn.running_mean)}.zeros", zeroShift) : Weight(bn.bias);
        return Node("BatchNormalization", [x, scale, bias, Weight(bn.running_mean), Weight(bn.running_var)], Float("epsilon", (float)bn.eps));
    }

    /// <summary>
    /// Folds every BatchNormalization whose input is a convolution's output read by nothing else
    /// into that convolution: w' = w * gamma / sqrt(var + eps) per output channel, b' = (b - mean) *
    /// gamma / sqrt(var + eps) + beta, computed in float64. Runs on the finished graph, so a
    /// convolution whose output is also read elsewhere (a dense block's input) is left alone.
    /// </summary>
    public int FoldBatchNorms()
    {
        var readers = Graph.Node.SelectMany(n => n.Input).GroupBy(i => i).ToDictionary(g => g.Key, g => g.Count());
        var producers = Graph.Node.ToDictionary(n => n.Output[0]);
        int folded = 0;
        foreach (var bn in Graph.Node.Where(n => n.OpType == "BatchNormalization").ToList())
        {
            if (!producers.TryGetValue(bn.Input[0], out var conv) || conv.OpType != "Conv" || readers[bn.Input[0]] != 1) continue;
            using var scope = NewDisposeScope();
            var (gamma, beta, mean, variance) = (Initializer(bn.Input[1]), Initializer(bn.Input[2]), Initializer(bn.Input[3]), Initializer(bn.Input[4]));
            double eps = bn.Attribute.Single(a => a.Name == "epsilon").F;
            var factor = gamma / (variance + eps).sqrt();
            var weightName = conv.Input[1];
            ReplaceInitializer(weightName, Initializer(weightName) * factor.reshape(-1, 1, 1, 1));
            var bias = conv.Input.Count > 2 ? Initializer(conv.Input[2]) : zeros_like(mean);
            bias = (bias - mean) * factor + beta;
            if (conv.Input.Count > 2) ReplaceInitializer(conv.Input[2], bias);
            else conv.Input.Add(Constant(weightName.EndsWith(".weight", StringComparison.Ordinal) ? weightName[..^".weight".Length] + ".bias" : weightName + ".bias", bias));
            // The convolution now writes what the BatchNorm wrote; the BatchNorm and its own initializers go.
            conv.Output[0] = bn.Output[0];
            Graph.Node.Remove(bn);
            foreach (var name in bn.Input.Skip(1)) RemoveInitializer(name);
            folded++;
        }
        return folded;
    }

    /// <summary>An initializer's values as a float64 tensor.</summary>
    Tensor Initializer(string name)
    {
        var proto = Graph.Initializer.Single(t => t.Name == name);
        var t = empty([.. proto.Dims], ScalarType.Float32);
        t.bytes = proto.RawData.ToByteArray();
        return t.to(ScalarType.Float64);
    }

    void ReplaceInitializer(string name, Tensor values)
    {
        int index = Graph.Initializer.Select((t, i) => (t, i)).Single(p => p.t.Name == name).i;
        Graph.Initializer[index] = FloatTensor(name, values);
    }

    void RemoveInitializer(string name)
    {
        Graph.Initializer.Remove(Graph.Initializer.Single(t => t.Name == name));
        _initializerNames.Remove(name);
    }

    /// <summary>Gemm with the weight transposed: y = x W^T + b, as nn.Linear.</summary>
    public string Linear(Linear linear, string x)
    {
        var inputs = new List<string> { x, Weight(linear.weight!) };
        if (linear.bias is not null) inputs.Add(Weight(linear.bias));
        return Node("Gemm", inputs, Int("transB", 1));
    }

    public string Relu(string x) => Node("Relu", [x]);

    public string Silu(string x) => Node("Mul", [x, Node("Sigmoid", [x])]);

    public string Add(string a, string b) => Node("Add", [a, b]);

    public string Mul(string a, string b) => Node("Mul", [a, b]);

    /// <summary>Concatenation along the channels.</summary>
    public string Concat(IEnumerable<string> values) => Node("Concat", values, Int("axis", 1));

    /// <summary>(N, C, H, W) to (N, C*H*W).</summary>
    public string Flatten(string x) => Node("Flatten", [x], Int("axis", 1));

    public string GlobalAveragePool(string x) => Node("GlobalAveragePool", [x]);

    public string MaxPool(string x, long[] kernel, long[] stride, long[] padding, bool ceilMode = false, long[]? dilation = null) =>
        Node("MaxPool", [x], Ints("kernel_shape", Pair(kernel)), Ints("strides", Pair(stride)), Ints("pads", Pads(padding)),
            Int("ceil_mode", ceilMode ? 1 : 0), Ints("dilations", Pair(dilation ?? [1])));

    public string AveragePool(string x, long[] kernel, long[] stride, long[] padding, bool ceilMode = false, bool countIncludePad = true) =>
        Node("AveragePool", [x], Ints("kernel_shape", Pair(kernel)), Ints("strides", Pair(stride)), Ints("pads", Pads(padding)),
            Int("ceil_mode", ceilMode ? 1 : 0), Int("count_include_pad", countIncludePad ? 1 : 0));

    /// <summary>
    /// Adaptive average pooling has no ONNX operator: to 1x1 it is GlobalAveragePool; to the size it
    /// already has, the identity; to a size that divides its input, a plain average pool. Other
    /// cases (VGG's 7x7 pool on a feature map smaller than 7x7) cannot be written exactly.
    /// </summary>
    public string AdaptiveAveragePool(AdaptiveAvgPool2d pool, string x)
    {
        var output = Pair(pool.output_size);
        if (output[0] == 1 && output[1] == 1) return GlobalAveragePool(x);
        if (!_inputShapes.TryGetValue(pool, out var shape)) throw new InvalidOperationException("ONNX export: an adaptive pool the probe forward did not reach");
        long h = shape[^2], w = shape[^1];
        if (h == output[0] && w == output[1]) return x;
        if (h % output[0] == 0 && w % output[1] == 0)
        {
            long[] kernel = [h / output[0], w / output[1]];
            return AveragePool(x, kernel, kernel, [0, 0]);
        }
        throw new NotSupportedException($"its adaptive average pool turns a {h}x{w} map into {output[0]}x{output[1]}, which ONNX cannot express; export at an input size where the map is a multiple of {output[0]}x{output[1]}");
    }

    static long[] Pair(long[] v) => v.Length == 1 ? [v[0], v[0]] : v;

    static long[] Pads(long[] padding)
    {
        var p = Pair(padding);
        return [p[0], p[1], p[0], p[1]];
    }
}
