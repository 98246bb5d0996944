using Trainer.Data;
using Trainer.Data.Transforms;
using static TorchSharp.torch;

namespace Trainer.Recipes.Weights.Onnx;

/// <summary>
/// The pixel preprocessing ML.NET ships beside its DNN featurizers (ResNetPreprocess.onnx): the
/// RGB channels split and concatenated as BGR, then a mean image subtracted. ML.NET feeds it
/// pixels in [0, 255]. Read as a per-channel <see cref="Normalization"/>: BGR, scale 255, the mean
/// image averaged per channel (in BGR order), std 1.
/// </summary>
internal static class OnnxPreprocessing
{
    public const string FileName = "ResNetPreprocess.onnx";

    /// <summary>Where the preprocessing for <paramref name="modelPath"/> lies: ../ResNetPrepOnnx/ (the package's layout) or the model's own folder; null when neither has it.</summary>
    public static string? Locate(string modelPath)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        string[] candidates = [Path.Combine(folder, "..", "ResNetPrepOnnx", FileName), Path.Combine(folder, FileName)];
        return candidates.Where(File.Exists).Select(Path.GetFullPath).FirstOrDefault();
    }

    /// <summary>The normalisation that <paramref name="path"/> performs; anything but a channel reorder and a mean subtraction is bad input.</summary>
    public static Normalization Read(string path)
    {
        using var model = OnnxModel.Read(path);
        var graph = new OnnxGraphIndex(model.Graph, p => new BadInputException(OnnxModel.OneLine($"{path} is not a channel reorder and mean subtraction this importer can read: {p}")));
        var inputs = model.Graph.DataInputs.ToList();
        if (inputs.Count != 1) throw graph.Fail($"the graph has {inputs.Count} data inputs, expected one image batch");
        var x = inputs[0].Name;

        bool bgr = false;
        if (graph.Readers(x) is [{ OpType: "Split" }])
        {
            var split = graph.Next(x, "Split");
            var concat = graph.Next(split.Outputs[0], "Concat");
            if (split.Int("axis", 0) != 1 || concat.Int("axis", 0) != 1 || split.Outputs.Length != 3 || split.Ints("split", [1, 1, 1]).Any(n => n != 1))
                throw graph.Fail($"{split} and {concat} should split and join the three channels (axis 1)");
            var order = concat.Inputs.Select(i => Array.IndexOf(split.Outputs, i)).ToArray();
            if (order.SequenceEqual([2, 1, 0])) bgr = true;
            else if (!order.SequenceEqual([0, 1, 2])) throw graph.Fail($"{concat} joins the channels in order {string.Join(", ", order)}, expected BGR (2, 1, 0) or RGB");
            x = concat.Outputs[0];
        }
        var sub = graph.Next(x, "Sub");
        if (sub.Inputs.Length != 2 || sub.Inputs[0] != x) throw graph.Fail($"{sub} should subtract a mean from {x}");
        var mean = graph.Weight(sub.Inputs[1], sub);
        var left = graph.Unvisited.FirstOrDefault();
        if (left is not null) throw graph.Fail($"{left} is neither a channel reorder nor a mean subtraction");

        // A mean of shape (1, 3, H, W), (3, H, W), (1, 3, 1, 1) or (3, 1, 1): one value per channel after averaging.
        bool perChannel = mean.dim() == 4 ? mean.shape[0] == 1 && mean.shape[1] == 3 : mean.dim() == 3 && mean.shape[0] == 3;
        if (!perChannel) throw graph.Fail($"the mean {sub.Inputs[1]} has shape [{string.Join(", ", mean.shape)}], expected one value or plane per channel");
        float[] values;
        // The scope holds the temporaries: one collected by the GC during a native call crashes libtorch.
        using (NewDisposeScope()) values = mean.reshape(3, -1).to(ScalarType.Float64).mean([1]).data<double>().Select(v => (float)v).ToArray();
        return new Normalization(NormalizationMode.Channel, values, [1f, 1f, 1f]) { Bgr = bgr, Scale = 255 };
    }
}
