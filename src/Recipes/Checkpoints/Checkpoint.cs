using System.Text.Json;
using System.Text.Json.Serialization;
using Trainer.Data;
using Trainer.Data.Transforms;
using Trainer.Recipes.Storage;
using Trainer.Recipes.Engine;
using static TorchSharp.torch;

namespace Trainer.Recipes.Checkpoints;

/// <summary>What a checkpoint records besides tensors.</summary>
internal sealed record CheckpointMeta
{
    public string Format { get; init; } = Checkpoint.CurrentFormat;
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
    /// <summary>Readable names of <see cref="Classes"/>, in label order, from an image folder's names file (classes.txt); null when the classes have no other names.</summary>
    public string[]? ClassNames { get; init; }
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
/// optimizer.safetensors (optimizer state by parameter name), optional ema.safetensors (the weight
/// average), rng.safetensors (torch's generator state) and checksums.json, sealed with a SHA-256 of
/// the whole file (<see cref="CheckpointArchive"/>). Written through <see cref="DurableFile"/>, so a
/// crash or a full disk never leaves half a file in place of the previous one.
/// </summary>
internal sealed class Checkpoint : IDisposable
{
    /// <summary>The format written: checksums and a seal.</summary>
    public const string CurrentFormat = "trainer-checkpoint/2";
    /// <summary>The first format (no checksums), still read.</summary>
    public const string FirstFormat = "trainer-checkpoint/1";
    const string FormatPrefix = "trainer-checkpoint/";
    const int CurrentVersion = 2;

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

    /// <summary>Writes the checkpoint in the current format; the file at <paramref name="path"/> is replaced only once the new one is complete and on the disk.</summary>
    public void Save(string path)
    {
        var meta = Meta with { Format = CurrentFormat };
        var entries = new List<(string, Action<Stream>, bool)>
        {
            ("meta.json", s => JsonSerializer.Serialize(s, meta, Json), true),
            ("model.safetensors", s => SafeTensors.Write(s, Model), false),
            ("optimizer.safetensors", s => SafeTensors.Write(s, Optimizer), false),
            ("rng.safetensors", s => SafeTensors.Write(s, Rng), false),
        };
        if (Ema is not null) entries.Add(("ema.safetensors", s => SafeTensors.Write(s, Ema), false));
        DurableFile.Write(path, file => CheckpointArchive.Write(file, entries));
    }

    /// <summary>
    /// Reads a checkpoint. A missing, cut-short, damaged or foreign file, or one of a newer format,
    /// is bad input naming the file; every check happens before a tensor is allocated.
    /// </summary>
    public static Checkpoint Load(string path) => Readable(path, () =>
    {
        var (entries, meta) = Verified(path);
        var names = new[] { "model.safetensors", "optimizer.safetensors", "rng.safetensors", "ema.safetensors" };
        var layouts = new Dictionary<string, IReadOnlyList<TensorLayout>>();
        foreach (var name in names)
        {
            if (entries.TryGetValue(name, out var bytes)) layouts[name] = SafeTensors.Layout(bytes, name);
            else if (name != "ema.safetensors") throw new InvalidDataException($"it has no {name}");
        }
        var tensors = new Dictionary<string, Dictionary<string, Tensor>>();
        try
        {
            foreach (var (name, layout) in layouts) tensors[name] = SafeTensors.Materialize(entries[name], layout);
        }
        catch
        {
            foreach (var t in tensors.Values.SelectMany(d => d.Values)) t.Dispose();
            throw;
        }
        return new Checkpoint
        {
            Meta = meta, Model = tensors["model.safetensors"], Optimizer = tensors["optimizer.safetensors"], Rng = tensors["rng.safetensors"],
            Ema = tensors.GetValueOrDefault("ema.safetensors"),
        };
    });

    /// <summary>A checkpoint's meta.json, after the same integrity checks as <see cref="Load"/>; no tensor is read.</summary>
    public static CheckpointMeta ReadMeta(string path) => Readable(path, () => Verified(path).Meta);

    static T Readable<T>(string path, Func<T> read)
    {
        if (!File.Exists(path)) throw new BadInputException($"checkpoint {path} does not exist");
        try { return read(); }
        catch (Exception e) when (e is not BadInputException && CheckpointArchive.IsUnreadable(e))
        {
            throw new BadInputException($"checkpoint {path} is not a readable trainer checkpoint: {OneLine(e.Message)}");
        }
    }

    /// <summary>The entries and meta of a checkpoint whose format this trainer reads and whose checksums (format 2) hold.</summary>
    static (Dictionary<string, byte[]> Entries, CheckpointMeta Meta) Verified(string path)
    {
        var (entries, isSealed) = CheckpointArchive.Read(path);
        if (!entries.TryGetValue("meta.json", out var metaBytes))
            throw new InvalidDataException(entries.Keys.Any(k => k.EndsWith("data.pkl", StringComparison.Ordinal))
                ? $"it is a PyTorch file (convert it: trainer import --from {path} --model NAME --out FILE.ckpt)"
                : "it is a zip archive without meta.json");
        if (FormatOf(metaBytes, path) == CurrentFormat)
        {
            if (!isSealed) throw new InvalidDataException("it is damaged (its SHA-256 seal, the zip comment, is missing)");
            CheckpointArchive.VerifyChecksums(entries);
        }
        var meta = JsonSerializer.Deserialize<CheckpointMeta>(metaBytes, Json) ?? throw new InvalidDataException("meta.json is empty");
        return (entries, meta);
    }

    /// <summary>meta.json's format tag; a newer trainer's format or an unknown one is refused saying so.</summary>
    static string FormatOf(byte[] metaJson, string path)
    {
        using var document = JsonDocument.Parse(metaJson);
        var format = document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("format", out var tag)
            && tag.ValueKind == JsonValueKind.String ? tag.GetString()! : throw new InvalidDataException("meta.json names no format");
        if (format is CurrentFormat or FirstFormat) return format;
        if (format.StartsWith(FormatPrefix, StringComparison.Ordinal) && int.TryParse(format[FormatPrefix.Length..], out var version) && version > CurrentVersion)
            throw new BadInputException($"checkpoint {path} has format {format}, written by a newer trainer; this one reads {FirstFormat} and {CurrentFormat}: update trainer to read it");
        throw new InvalidDataException($"meta.json names an unknown format '{OneLine(format)}'");
    }

    static string OneLine(string text) => text.ReplaceLineEndings(" ");

    public void Dispose()
    {
        foreach (var t in Model.Values.Concat(Optimizer.Values).Concat(Rng.Values).Concat(Ema?.Values ?? Enumerable.Empty<Tensor>())) t.Dispose();
    }
}
