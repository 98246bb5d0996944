using Google.Protobuf;
using Trainer.Data;
using Trainer.Data.Transforms;
using Trainer.Models.Onnx;
using Trainer.Recipes.Runs;
using static TorchSharp.torch;

namespace Trainer.Recipes.Deploy;

/// <summary>What `trainer export` wrote as ONNX.</summary>
public sealed record OnnxExportResult(string Model, int Classes, int Nodes, int Initializers, long Bytes, string Input);

/// <summary>
/// `trainer export --out FILE.onnx`: a checkpoint's model (any registered family, any head) as an
/// ONNX model for inference, written from the model's own module tree (each family's EmitFeatures).
/// BatchNorm stays a BatchNormalization node by default: the initializers are then exactly the
/// state_dict, so `trainer import` reads the file back, and ONNX Runtime folds BatchNorm into the
/// convolutions itself when it loads the model. <c>foldBatchNorm</c> folds at export instead.
/// <c>preprocess</c> puts the run's input normalisation in the graph (the input is then RGB in [0, 1]).
/// </summary>
public static class OnnxExport
{
    public static OnnxExportResult Write(string checkpointPath, string outPath, bool preprocess, bool foldBatchNorm)
    {
        using var checkpoint = CheckpointModel.Load(checkpointPath, "cpu");
        var meta = checkpoint.Meta;
        var data = checkpoint.Config.Data;
        bool folder = DataSources.ReadsAsImageFolder(data);
        int side = DataSources.EvalSide(data);
        long[] input = [3, side, side];
        var normalization = meta.Normalization;
        var metadata = new OnnxMetadata(meta.Model, meta.Classes, [.. Prediction.ClassNames(meta, data)], normalization, preprocess, foldBatchNorm,
            meta.ConfigYaml, input, folder ? data.ResizeSize : side, side);
        Onnx.ModelProto proto;
        try
        {
            proto = OnnxModelWriter.Build(checkpoint.Model, meta.Model, new OnnxWriteOptions(input, foldBatchNorm,
                preprocess ? (g, x) => Normalize(g, x, normalization, input) : null, metadata.ToProperties()));
        }
        catch (NotSupportedException e)
        {
            throw new BadInputException($"{checkpointPath}: {meta.Model} cannot be exported to ONNX: {e.Message}");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        Storage.DurableFile.Write(outPath, file => proto.WriteTo(file));
        return new OnnxExportResult(meta.Model, meta.NumClasses, proto.Graph.Node.Count, proto.Graph.Initializer.Count, new FileInfo(outPath).Length,
            metadata.DescribeInput());
    }

    /// <summary>The training normalisation as nodes: scale to the network's units, reorder to BGR where it wants that, subtract the mean, divide by the std.</summary>
    static string Normalize(OnnxGraphBuilder g, string x, Normalization n, long[] input)
    {
        if (n.Scale != 1) x = g.Mul(x, g.Scalar(n.Scale));
        if (n.Bgr) x = g.Node("Gather", [x, g.Int64s(2, 1, 0)], OnnxGraphBuilder.Int("axis", 1));
        long channels = n.Std.Length;
        using var mean = n.Mode == NormalizationMode.PixelMean
            ? tensor(n.Mean).reshape(1, channels, input[1], input[2])
            : tensor(n.Mean).reshape(1, channels, 1, 1);
        using var std = tensor(n.Std).reshape(1, channels, 1, 1);
        x = g.Node("Sub", [x, g.Constant("preprocess.mean", mean)]);
        return g.Node("Div", [x, g.Constant("preprocess.std", std)]);
    }
}
