using Trainer.Recipes.Weights;

namespace Trainer.Cli.Verbs;

public static class ExportVerb
{
    public const string Help = """
        trainer export --checkpoint FILE --out FILE.pth|FILE.safetensors|FILE.onnx [--preprocess] [--fold-bn]
          Writes a checkpoint's model weights as a PyTorch state_dict (torch.load reads it; the
          keys are torchvision's, so load_state_dict(strict=True) into the torchvision model
          works), or as safetensors when the name ends in .safetensors.
          FILE.onnx: the model for inference with ONNX Runtime (opset 17, IR 8): input "input"
          float32 (batch, 3, H, W) at the run's evaluation size, output "logits" (batch, classes);
          dropout and auxiliary heads left out; class names, input normalisation and the run's
          config in its metadata (docs/deploy.md).
          --preprocess  the graph normalises its input itself: feed RGB in [0, 1]
          --fold-bn     fold BatchNorm into the convolutions (default: BatchNormalization nodes,
                        whose weights 'trainer import' reads back; ONNX Runtime folds them itself)
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("export", args, ["checkpoint", "out"], ["preprocess", "fold-bn"]);
        var checkpoint = a.Value("checkpoint") ?? throw new Data.BadInputException("'trainer export' needs --checkpoint FILE");
        var outPath = a.Value("out") ?? throw new Data.BadInputException("'trainer export' needs --out FILE.pth");
        if (outPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            var r = Recipes.Deploy.OnnxExport.Write(checkpoint, outPath, a.Has("preprocess"), a.Has("fold-bn"));
            output.WriteLine($"{outPath}: {r.Model} as ONNX ({r.Nodes} nodes, {r.Initializers} initializers, {r.Bytes / 1e6:0.0} MB, {r.Classes} classes) from {checkpoint}; input {r.Input}");
            return 0;
        }
        if (a.Has("preprocess") || a.Has("fold-bn")) throw new Data.BadInputException("'trainer export': --preprocess and --fold-bn apply to ONNX output (--out FILE.onnx)");
        int count = WeightsTransfer.Export(checkpoint, outPath);
        output.WriteLine($"{outPath}: {count} tensors from {checkpoint}");
        return 0;
    }
}
