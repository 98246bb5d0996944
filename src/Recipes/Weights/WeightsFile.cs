using Trainer.Data;
using Trainer.Data.Transforms;
using Trainer.Recipes.Checkpoints;
using static TorchSharp.torch;

namespace Trainer.Recipes.Weights;

/// <summary>The file formats weights come in.</summary>
internal enum WeightsFormat { PyTorch, SafeTensors, Checkpoint, Onnx }

/// <summary>
/// Named tensors read from a weights file, with what the file says about them: the input
/// normalisation the weights expect, class names and model name (this tool's checkpoints, ONNX
/// preprocessing) where it says so.
/// </summary>
internal sealed class WeightsSource : IDisposable
{
    public required string Path { get; init; }
    public required WeightsFormat Format { get; init; }
    public required Dictionary<string, Tensor> Tensors { get; init; }
    public Normalization? Normalization { get; init; }
    public IReadOnlyList<string>? Classes { get; init; }
    public string? Model { get; init; }
    /// <summary>The run config the weights were trained with (an ONNX model written by `trainer export`), so its model is rebuilt exactly (head, width) and keeps its evaluation transform.</summary>
    public string? ConfigYaml { get; init; }
    /// <summary>Readable class names, where the file has them beside the class ids.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    public string Describe() => $"{System.IO.Path.GetFileName(Path)} ({Format switch
    {
        WeightsFormat.PyTorch => "PyTorch state_dict",
        WeightsFormat.SafeTensors => "safetensors",
        WeightsFormat.Checkpoint => "trainer checkpoint",
        _ => "ONNX initializers",
    }}, {Tensors.Count} tensors)";

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}

/// <summary>
/// Reads weights whatever their format, recognised by content (zip layout, magic bytes) rather
/// than by extension: PyTorch's zip state_dicts (.pth/.pt), safetensors, this tool's checkpoints and
/// ONNX models of a basic-block ResNet. Anything else is bad input naming the file and, where it
/// can, saying how to fix it (a legacy-format .pth: re-save it in the zip format).
/// </summary>
internal static class WeightsFile
{
    /// <summary>The name that stands for the ImageNet ResNet-18 restored from NuGet, wherever the NuGet cache is.</summary>
    public const string NuGetResNet18 = "nuget:mlnet_resnet18";

    public static WeightsSource Read(string path)
    {
        if (path == NuGetResNet18) path = Onnx.PretrainedPackages.MlNetResNet18.Require();
        if (Directory.Exists(path)) throw new BadInputException($"weights file {path} is a folder, not a file");
        if (!File.Exists(path)) throw new BadInputException($"weights file {path} does not exist");
        var head = new byte[16];
        int count;
        try
        {
            using var stream = File.OpenRead(path);
            count = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"weights file {path} cannot be read: {e.Message}");
        }
        if (count == 0) throw new BadInputException($"weights file {path} is empty");
        if (count >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return ReadZip(path);
        if (head[0] == 0x80 && count > 1 && head[1] <= 5)
            throw new BadInputException($"{path} is in PyTorch's legacy serialization format (before 1.6); re-save it in the zip format: " +
                "torch.save(torch.load(\"OLD.pth\"), \"NEW.pth\") with PyTorch 1.6 or newer");
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return ReadOnnx(path);
        if (LooksLikeSafeTensors(head, count, new FileInfo(path).Length)) return ReadSafeTensors(path);
        throw new BadInputException($"{path} is not a weights file trainer reads (a PyTorch .pth/.pt in the zip format, .safetensors, .onnx, or a trainer checkpoint)");
    }

    static WeightsSource ReadZip(string path)
    {
        bool checkpoint, pickle, script;
        try
        {
            using var zip = ZipLimits.OpenChecked(path);
            checkpoint = zip.GetEntry("meta.json") is not null && zip.GetEntry("model.safetensors") is not null;
            pickle = zip.Entries.Any(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal));
            script = zip.Entries.Any(e => e.FullName.EndsWith("constants.pkl", StringComparison.Ordinal));
        }
        catch (Exception e) when (CheckpointArchive.IsUnreadable(e))
        {
            throw new BadInputException($"weights file {path} is a damaged zip archive: {e.Message.ReplaceLineEndings(" ")}");
        }
        if (checkpoint)
        {
            // The model's tensors live on in the result; the rest of the checkpoint is released here.
            var c = Checkpoint.Load(path);
            foreach (var t in c.Optimizer.Values.Concat(c.Rng.Values).Concat(c.Ema?.Values ?? Enumerable.Empty<Tensor>())) t.Dispose();
            return new WeightsSource
            {
                Path = path, Format = WeightsFormat.Checkpoint, Tensors = c.Model, Normalization = c.Meta.Normalization,
                Classes = c.Meta.Classes.Length > 0 ? c.Meta.Classes : null, Model = c.Meta.Model,
            };
        }
        if (script) throw new BadInputException($"{path} is a TorchScript archive, not a state_dict; in PyTorch save torch.save(model.state_dict(), \"FILE.pth\") instead");
        if (!pickle) throw new BadInputException($"{path} is a zip archive but neither a PyTorch state_dict (no data.pkl) nor a trainer checkpoint");
        return new WeightsSource { Path = path, Format = WeightsFormat.PyTorch, Tensors = PyTorchFormat.Read(path) };
    }

    static bool LooksLikeSafeTensors(byte[] head, int count, long length)
    {
        if (count < 9) return false;
        ulong headerLength = BitConverter.ToUInt64(head, 0);
        return headerLength > 1 && headerLength <= (ulong)(length - 8) && head[8] == '{';
    }

    static WeightsSource ReadSafeTensors(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return new WeightsSource { Path = path, Format = WeightsFormat.SafeTensors, Tensors = SafeTensors.Read(stream, path) };
        }
        catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException or IOException or InvalidOperationException or FormatException)
        {
            throw new BadInputException($"weights file {path} is not a readable safetensors file: {e.Message}");
        }
    }

    static WeightsSource ReadOnnx(string path)
    {
        // Read once: a file `trainer export` wrote, else a basic-block ResNet (ML.NET's ResNet-18).
        using var model = Onnx.OnnxModel.Read(path);
        var exported = Onnx.ExportedOnnx.TryRead(model);
        if (exported is not null) return exported;
        var onnx = Onnx.OnnxResNetImporter.Read(model);
        return new WeightsSource { Path = path, Format = WeightsFormat.Onnx, Tensors = onnx.StateDict, Normalization = onnx.Normalization };
    }
}
