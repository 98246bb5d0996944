using Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Models.Onnx;

/// <summary>How a model is written as ONNX.</summary>
/// <param name="Input">One image's shape, CxHxW: the graph's spatial size is fixed, its batch dimension is not.</param>
/// <param name="FoldBatchNorm">Fold BatchNorm into the convolution before it (no BatchNormalization nodes).</param>
/// <param name="Preprocess">Nodes placed before the model (the input normalisation), from the graph's input to the model's; null: the graph takes the model's input as it is.</param>
/// <param name="Metadata">Written to the model's metadata_props.</param>
internal sealed record OnnxWriteOptions(long[] Input, bool FoldBatchNorm = false, Func<OnnxGraphBuilder, string, string>? Preprocess = null,
    IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>
/// Writes a classifier as an ONNX model for inference: IR version 8, operator set 17 (what Debian's
/// onnx 1.12 checker accepts and ONNX Runtime runs), input "input" (batch, C, H, W) float32, output
/// "logits" (batch, classes); the batch dimension is symbolic. The model is put in evaluation
/// mode; auxiliary classifiers are not part of the graph.
/// </summary>
internal static class OnnxModelWriter
{
    public const int IrVersion = 8;
    public const int Opset = 17;
    public const string InputName = "input";
    public const string OutputName = "logits";
    public const string Producer = "trainer";

    public static ModelProto Build(ClassifierModel model, string name, OnnxWriteOptions options)
    {
        model.eval();
        var g = new OnnxGraphBuilder(model, ProbeInputShapes(model, options.Input));
        var input = options.Preprocess is null ? InputName : options.Preprocess(g, InputName);
        var logits = model.EmitLogits(g, input);
        RenameValue(g.Graph, logits, OutputName);   // the head's Gemm writes the graph's output
        if (options.FoldBatchNorm) g.FoldBatchNorms();

        g.Graph.Name = name;
        g.Graph.Input.Add(Value(InputName, "batch", options.Input));
        g.Graph.Output.Add(Value(OutputName, "batch", [model.Head.out_features]));
        var proto = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = Producer,
            ProducerVersion = typeof(OnnxModelWriter).Assembly.GetName().Version?.ToString() ?? "",
            Graph = g.Graph,
            DocString = $"{name}, exported for inference by trainer",
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in options.Metadata ?? new Dictionary<string, string>())
            proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return proto;
    }

    static void RenameValue(GraphProto graph, string from, string to)
    {
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++) if (node.Input[i] == from) node.Input[i] = to;
            for (int i = 0; i < node.Output.Count; i++) if (node.Output[i] == from) node.Output[i] = to;
        }
    }

    static ValueInfoProto Value(string name, string batch, long[] shape)
    {
        var tensorShape = new TensorShapeProto();
        tensorShape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = batch });
        foreach (var d in shape) tensorShape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = tensorShape } },
        };
    }

    /// <summary>The input shape of every adaptive pool in one forward at <paramref name="input"/> (their ONNX form depends on it).</summary>
    static Dictionary<nn.Module, long[]> ProbeInputShapes(ClassifierModel model, long[] input)
    {
        var shapes = new Dictionary<nn.Module, long[]>(ReferenceEqualityComparer.Instance);
        var removers = new List<Action>();
        foreach (var (_, module) in model.named_modules())
            if (module is AdaptiveAvgPool2d pool)
                removers.Add(pool.register_forward_hook((m, x, y) => { shapes[m] = x.shape; return y; }).remove);
        if (removers.Count == 0) return shapes;
        try
        {
            var device = model.parameters().First().device;
            using var _ = no_grad();
            using var x = zeros([1, .. input], device: device);
            using var logits = model.call(x);
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        return shapes;
    }
}
