using Trainer.Recipes.Weights;

namespace Trainer.Cli.Verbs;

public static class ImportVerb
{
    public const string Help = """
        trainer import --from FILE [--model NAME] --out FILE
          Converts weights into a trainer checkpoint of model NAME, checked strictly against it
          (unknown, missing or wrongly shaped keys are listed). FILE may be a PyTorch/torchvision
          state_dict (.pth/.pt, zip format), .safetensors, a trainer checkpoint, or an ONNX
          basic-block ResNet such as the ImageNet ResNet-18 of the NuGet package
          Microsoft.ML.DnnImageFeaturizer.ResNet18 (model mlnet_resnet18), or an ONNX model
          written by 'trainer export' (any model; --model may be left out: the file names it, and
          its run config, classes and normalisation come along). Weights without a
          classifier give a features-only checkpoint: start a run from it with init.weights.
          The input normalisation the weights expect (channel order, scale, mean, std) is kept.
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("import", args, ["from", "model", "out"], []);
        string Need(string name) => a.Value(name) ?? throw new Data.BadInputException($"'trainer import' needs --{name} (see 'trainer import --help')");
        var (from, model, outPath) = (Need("from"), a.Value("model"), Need("out"));
        var r = WeightsTransfer.Import(from, model, outPath);
        output.WriteLine($"{outPath}: {r.Model} with {r.Tensors} tensors from {r.Source}; " +
            (r.FeaturesOnly ? "features only (no classifier)" : $"{r.NumClasses} classes") + $"; input {r.Normalization.Describe()}");
        return 0;
    }
}
