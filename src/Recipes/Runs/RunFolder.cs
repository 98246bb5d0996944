namespace Trainer.Recipes.Runs;

/// <summary>The files of one run folder (runs/&lt;name&gt;/), as the interface spec names them.</summary>
public sealed record RunFolder(string Root)
{
    public string Config => Path.Combine(Root, "config.yaml");
    public string Metrics => Path.Combine(Root, "metrics.csv");
    public string Summary => Path.Combine(Root, "summary.json");
    public string Iterations => Path.Combine(Root, "iterations.csv");
    public string Checkpoints => Path.Combine(Root, "checkpoints");
    public string LastCheckpoint => Path.Combine(Checkpoints, "last.ckpt");
    public string BestCheckpoint => Path.Combine(Checkpoints, "best.ckpt");

    /// <summary>True when the folder already holds a run that a fresh start would overwrite.</summary>
    public bool HoldsRun => File.Exists(Config) || File.Exists(Metrics) || Directory.Exists(Checkpoints);

    public static RunFolder Default(string model, string dataset) =>
        new(Path.Combine("runs", $"{model}-{dataset}-{DateTime.Now:yyyyMMdd-HHmmss}"));
}
