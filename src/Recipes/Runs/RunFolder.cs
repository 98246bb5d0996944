using System.Text.Json;
using Trainer.Data;

namespace Trainer.Recipes.Runs;

/// <summary>The files of one run folder (runs/&lt;name&gt;/), as the interface spec names them.</summary>
internal sealed record RunFolder
{
    /// <summary>A run folder at <paramref name="root"/>; a file there or above it is bad input (no run can live in it).</summary>
    public RunFolder(string root)
    {
        if (File.Exists(root)) throw new BadInputException($"{root} is a file, not a run folder: give --out a folder");
        for (var above = Path.GetDirectoryName(Path.GetFullPath(root)); above is not null; above = Path.GetDirectoryName(above))
            if (File.Exists(above)) throw new BadInputException($"{root} cannot be a run folder: {above} is a file");
        Root = root;
    }

    public string Root { get; }
    public string Config => Path.Combine(Root, "config.yaml");
    public string Metrics => Path.Combine(Root, "metrics.csv");
    public string Summary => Path.Combine(Root, "summary.json");
    public string Iterations => Path.Combine(Root, "iterations.csv");
    public string Checkpoints => Path.Combine(Root, "checkpoints");
    public string LastCheckpoint => Path.Combine(Checkpoints, "last.ckpt");
    public string BestCheckpoint => Path.Combine(Checkpoints, "best.ckpt");

    /// <summary>True when the folder already holds a run that a fresh start would overwrite (a checkpoints folder without a checkpoint does not count).</summary>
    public bool HoldsRun => File.Exists(Config) || File.Exists(Metrics)
        || (Directory.Exists(Checkpoints) && Directory.EnumerateFiles(Checkpoints, "*.ckpt").Any());

    /// <summary>True when summary.json says the run ended (written after its last epoch and final test).</summary>
    public bool Finished
    {
        get
        {
            try
            {
                if (!File.Exists(Summary)) return false;
                using var doc = JsonDocument.Parse(File.ReadAllText(Summary));
                return doc.RootElement.ValueKind == JsonValueKind.Object
                    && doc.RootElement.TryGetProperty("finished", out var finished) && finished.ValueKind == JsonValueKind.True;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
            {
                return false;
            }
        }
    }

    public static RunFolder Default(string model, string dataset) =>
        new(Path.Combine("runs", $"{model}-{dataset}-{DateTime.Now:yyyyMMdd-HHmmss}"));
}
