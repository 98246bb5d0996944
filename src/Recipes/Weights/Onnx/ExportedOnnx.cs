using Trainer.Data;
using Trainer.Recipes.Deploy;
using static TorchSharp.torch;

namespace Trainer.Recipes.Weights.Onnx;

/// <summary>
/// An ONNX model written by `trainer export`, read back as the state_dict it came from: its
/// initializers carry the state_dict keys (graph constants aside), its metadata the model, the run
/// config, the classes and the normalisation. BatchNorm batch counters, which inference does not
/// need and the export leaves out, come back as 0. A file exported with --fold-bn no longer holds
/// the BatchNorm parameters and is refused.
/// </summary>
internal static class ExportedOnnx
{
    /// <summary>The weights of a file `trainer export` wrote, or null for any other ONNX model (the caller keeps owning <paramref name="model"/>).</summary>
    public static WeightsSource? TryRead(OnnxModel model)
    {
        var path = model.Path;
        var input = model.Graph.DataInputs.FirstOrDefault()?.Shape.Skip(1).ToArray() ?? [];
        var metadata = OnnxMetadata.From(model.Metadata, path, input);
        if (metadata is null) return null;
        if (metadata.FoldedBatchNorm)
            throw new BadInputException($"{path} was exported with --fold-bn: its BatchNorm layers are folded into the convolutions and cannot be read back as the model's weights; export without --fold-bn to round-trip");
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, values) in model.Graph.Initializers)
        {
            if (IsGraphConstant(name)) continue;
            tensors[name] = values.clone().DetachFromDisposeScope();
            if (name.EndsWith(".running_var", StringComparison.Ordinal))
                tensors[name[..^"running_var".Length] + "num_batches_tracked"] = tensor(0L).DetachFromDisposeScope();
        }
        return new WeightsSource
        {
            Path = path, Format = WeightsFormat.Onnx, Tensors = tensors, Normalization = metadata.Normalization, Classes = metadata.Classes,
            ClassNames = metadata.ClassNames, Model = metadata.Model, ConfigYaml = metadata.ConfigYaml,
        };
    }

    /// <summary>Initializers the export adds beside the weights: shared constants and the baked-in normalisation.</summary>
    static bool IsGraphConstant(string name) => name.StartsWith("const_", StringComparison.Ordinal) || name.StartsWith("preprocess.", StringComparison.Ordinal);
}
