// Temporary: replaced by the ONNX importer on its branch.
namespace Trainer.Recipes.Weights.Onnx;
public sealed record OnnxImport(Dictionary<string, TorchSharp.torch.Tensor> StateDict, int[] BlocksPerStage, Trainer.Data.Transforms.Normalization? Normalization, string Description);
public static class OnnxResNetImporter
{
    public static OnnxImport Read(string path) => throw new Trainer.Data.BadInputException($"{path}: ONNX import is not merged yet");
}
