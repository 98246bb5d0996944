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
        var paths = new List<string>();
        if (last) paths.Add(LastPath);
        if (e.IsBest) paths.Add(BestPath);
        if (paths.Count > 0) SessionCheckpoint.Save(s, [.. paths]);
    }
}
