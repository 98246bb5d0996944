using Trainer.Data;
using Trainer.Data.Transforms;
using static TorchSharp.torch;

namespace Trainer.Recipes.Weights.Onnx;

/// <summary>
/// A ResNet's weights read from ONNX under torchvision's state_dict names (num_batches_tracked 0,
/// no fc: the file ends at the pooled features), the blocks it has per stage, the pixel
/// normalisation its preprocessing file performs (null without one), and where each tensor came
/// from (torchvision key -> ONNX initializer). Owns the tensors.
/// </summary>
internal sealed record ImportedResNet(Dictionary<string, Tensor> StateDict, int[] BlocksPerStage, Normalization? Normalization,
    string Description, IReadOnlyDictionary<string, string> Sources) : IDisposable
{
    /// <summary>The registered model that takes this state_dict (fc aside), or null when none has these stage depths.</summary>
    public string? ModelName => string.Join(",", BlocksPerStage) switch
    {
        "2,2,2,2" => "resnet18",
        "3,4,6,3" => "resnet34",
        "2,2,2,3" => "mlnet_resnet18",
        _ => null,
    };

    public void Dispose()
    {
        foreach (var t in StateDict.Values) t.Dispose();
    }
}

/// <summary>
/// Maps an ONNX ResNet of basic blocks (such as the ImageNet ResNet-18 of ML.NET's
/// DnnImageFeaturizer, a CNTK export) onto torchvision's names by following the graph from its
/// input (<see cref="ResNetGraphWalk"/>); initializer names and node order are not trusted.
/// </summary>
internal static class OnnxResNetImporter
{
    public static ImportedResNet Read(string path)
    {
        using var model = OnnxModel.Read(path);
        return Read(model);
    }

    /// <summary>As <see cref="Read(string)"/>, from a model already read (the caller keeps owning it).</summary>
    public static ImportedResNet Read(OnnxModel model)
    {
        var path = model.Path;
        var walk = new ResNetGraphWalk(new OnnxGraphIndex(model.Graph, p => new BadInputException(OnnxModel.OneLine($"{path} is not a basic-block ResNet this importer can map: {p}"))));
        var blocks = walk.Run();
        var prep = OnnxPreprocessing.Locate(path);
        var normalization = prep is null ? null : OnnxPreprocessing.Read(prep);

        var state = new Dictionary<string, Tensor>();
        foreach (var (key, source) in walk.Sources)
        {
            // Owned by the result, not by a dispose scope the caller may have open.
            state[key] = model.Graph.Initializers[source].clone().DetachFromDisposeScope();
            // torchvision's BatchNorm2d keeps a batch counter after its running variance.
            if (key.EndsWith(".running_var")) state[key[..^"running_var".Length] + "num_batches_tracked"] = tensor(0L).DetachFromDisposeScope();
        }
        var input = string.Join("x", walk.InputShape.Skip(1).Select(d => d > 0 ? d.ToString() : "?"));
        var description = $"{Path.GetFileName(path)} ({model.Producer}): ResNet of basic blocks {string.Join("-", blocks)}, "
            + $"{walk.Features} features from a {input} input" + (normalization is null ? "" : $"; expects {normalization.Describe()}");
        return new ImportedResNet(state, blocks, normalization, description, walk.Sources.ToDictionary());
    }
}
