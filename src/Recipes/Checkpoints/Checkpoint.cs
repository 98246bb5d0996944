using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using Trainer.Data;
using Trainer.Data.Transforms;
using Trainer.Recipes.Engine;
using static TorchSharp.torch;

namespace Trainer.Recipes.Checkpoints;

/// <summary>What a checkpoint records besides tensors.</summary>
public sealed record CheckpointMeta
{
    public string Format { get; init; } = "trainer-checkpoint/1";
    public required string Model { get; init; }
    public required int NumClasses { get; init; }
    /// <summary>The resolved config YAML of the run, so eval and resume rebuild exactly this run.</summary>
    public required string ConfigYaml { get; init; }
    /// <summary>Epochs completed (1 after the first epoch).</summary>
    public required int Epoch { get; init; }
    /// <summary>Optimizer iterations completed.</summary>
    public required long Step { get; init; }
    public required Dictionary<string, double> ScheduleState { get; init; }
    public required Dictionary<string, double> Metrics { get; init; }
    public required double BestTop1 { get; init; }
    public required int BestEpoch { get; init; }
    /// <summary>Validation top-5 at the best epoch.</summary>
    public double BestTop5 { get; init; } = -1;
    public required NormalizationMode NormalizationMode { get; init; }
    public required float[] NormalizationMean { get; init; }
    public required float[] NormalizationStd { get; init; }
    /// <summary>Input channel order BGR (imported Caffe/CNTK weights); false for RGB.</summary>
    public bool NormalizationBgr { get; init; }
    /// <summary>Pixel scale the statistics are in: 1 for [0, 1], 255 for [0, 255].</summary>
    public float NormalizationScale { get; init; } = 1;
    public required string[] Classes { get; init; }
    /// <summary>Checkpoints written by trainer import: where the weights came from.</summary>
    public string? ImportedFrom { get; init; }
    public double ElapsedSeconds { get; init; }
    /// <summary>fp16 runs: the dynamic loss scale and good steps since it last changed.</summary>
    public double? LossScale { get; init; }
    public int? LossScaleGoodSteps { get; init; }
    /// <summary>Training images processed so far.</summary>
    public long ImagesSeen { get; init; }
    /// <summary>Runs with a weight average: its updates so far.</summary>
    public long? EmaUpdates { get; init; }
    /// <summary>Mid-epoch checkpoints (checkpoint.every_steps, a stop on request): where epoch <see cref="Epoch"/> + 1 stands; null between epochs.</summary>
    public EpochProgress? InEpoch { get; init; }
    /// <summary>Multiplier of the schedule's learning rate left by rollbacks after bad numbers (1: none).</summary>
    public double LrScale { get; init; } = 1;
    /// <summary>Rollbacks after bad numbers so far.</summary>
    public int NanRollbacks { get; init; }

    public Normalization Normalization => new(NormalizationMode, NormalizationMean, NormalizationStd) { Bgr = NormalizationBgr, Scale = NormalizationScale };
}

/// <summary>
/// A checkpoint file: a zip holding meta.json, model.safetensors (the model's state_dict),
/// optimizer.safetensors (optimizer state by parameter name), optional ema.safetensors (the weight average) and rng.safetensors (torch's
/// generator state). Written to a temporary file and renamed, so a crash never leaves half a file.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public required CheckpointMeta Meta { get; init; }
    public required Dictionary<string, Tensor> Model { get; init; }
    public required Dictionary<string, Tensor> Optimizer { get; init; }
    public required Dictionary<string, Tensor> Rng { get; init; }
    /// <summary>The moving average of the weights (ema.safetensors), for runs that keep one.</summary>
    public Dictionary<string, Tensor>? Ema { get; init; }

    public void Save(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        using (var file = File.Create(temporary))
        using (var zip = new ZipArchive(file, ZipArchiveMode.Create))
        {
            using (var meta = zip.CreateEntry("meta.json", CompressionLevel.Optimal).Open())
                JsonSerializer.Serialize(meta, Meta, Json);
            WriteTensors(zip, "model.safetensors", Model);
            WriteTensors(zip, "optimizer.safetensors", Optimizer);
            WriteTensors(zip, "rng.safetensors", Rng);
            if (Ema is not null) WriteTensors(zip, "ema.safetensors", Ema);
        }
        File.Move(temporary, path, overwrite: true);
    }

    static void WriteTensors(ZipArchive zip, string entry, Dictionary<string, Tensor> tensors)
    {
        using var stream = zip.CreateEntry(entry, CompressionLevel.NoCompression).Open();
        SafeTensors.Write(stream, tensors);
    }

    /// <summary>Reads a checkpoint; anything unreadable is bad input naming the file.</summary>
    public static Checkpoint Load(string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"checkpoint {path} does not exist");
        try
        {
            using var zip = ZipFile.OpenRead(path);
            ZipArchiveEntry Entry(string name) => zip.GetEntry(name) ?? throw new InvalidDataException($"it has no {name}");
            CheckpointMeta meta;
            using (var stream = Entry("meta.json").Open())
                meta = JsonSerializer.Deserialize<CheckpointMeta>(stream, Json) ?? throw new InvalidDataException("meta.json is empty");
            Dictionary<string, Tensor> Tensors(string name)
            {
                using var stream = Entry(name).Open();
                return SafeTensors.Read(stream, name);
            }
            return new Checkpoint
            {
                Meta = meta, Model = Tensors("model.safetensors"), Optimizer = Tensors("optimizer.safetensors"), Rng = Tensors("rng.safetensors"),
                Ema = zip.GetEntry("ema.safetensors") is null ? null : Tensors("ema.safetensors"),
            };
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"checkpoint {path} is not a readable trainer checkpoint: {e.Message}");
        }
    }

    public void Dispose()
    {
        foreach (var t in Model.Values.Concat(Optimizer.Values).Concat(Rng.Values).Concat(Ema?.Values ?? Enumerable.Empty<Tensor>())) t.Dispose();
    }
}
