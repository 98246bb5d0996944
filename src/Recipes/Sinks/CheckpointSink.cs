using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// checkpoints/last.ckpt every checkpoint.every_epochs epochs and at the end, checkpoints/best.ckpt
/// whenever validation top-1 improves. Each is written to a temporary file, then renamed.
/// </summary>
public sealed class CheckpointSink(string folder) : TrainingSink
{
    public string LastPath => Path.Combine(folder, "last.ckpt");
    public string BestPath => Path.Combine(folder, "best.ckpt");

    public override void EpochEnded(TrainingSession s, EpochRecord e)
    {
        bool final = e.Epoch >= s.TotalEpochs || (s.Config.Train.Iterations > 0 && s.Step >= s.Config.Train.Iterations);
        bool last = final || e.Epoch % s.Config.Checkpoint.EveryEpochs == 0;
        if (!last && !e.IsBest) return;
        var checkpoint = SessionCheckpoint.Capture(s);
        if (last) checkpoint.Save(LastPath);
        if (e.IsBest) checkpoint.Save(BestPath);
        // Capture shares the live tensors (except the RNG state copy), so only that is freed here.
        foreach (var t in checkpoint.Rng.Values) t.Dispose();
    }
}
