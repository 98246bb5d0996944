using Trainer.Recipes.Weights;

namespace Trainer.Cli.Verbs;

public static class ExportVerb
{
    public const string Help = """
        trainer export --checkpoint FILE --out FILE.pth|FILE.safetensors
          Writes a checkpoint's model weights as a PyTorch state_dict (torch.load reads it; the
          keys are torchvision's, so load_state_dict(strict=True) into the torchvision model
          works), or as safetensors when the name ends in .safetensors.
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("export", args, ["checkpoint", "out"], []);
        var checkpoint = a.Value("checkpoint") ?? throw new Data.BadInputException("'trainer export' needs --checkpoint FILE");
        var outPath = a.Value("out") ?? throw new Data.BadInputException("'trainer export' needs --out FILE.pth");
        int count = WeightsTransfer.Export(checkpoint, outPath);
        output.WriteLine($"{outPath}: {count} tensors from {checkpoint}");
        return 0;
    }
}
