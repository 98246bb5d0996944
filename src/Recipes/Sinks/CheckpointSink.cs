using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// checkpoints/last.ckpt every checkpoint.every_epochs epochs and at the end, checkpoints/best.ckpt
/// whenever validation top-1 improves. Each is written to a temporary file, then renamed.
/// </summary>
public sealed class CheckpointSink(string lastPath, string bestPath) : TrainingSink
{
    public override void EpochEnded(TrainingSession s, EpochRecord e)
    {
        bool last = s.Finished || e.Epoch % s.Config.Checkpoint.EveryEpochs == 0;
        var paths = new List<string>();
        if (last) paths.Add(lastPath);
        if (e.IsBest) paths.Add(bestPath);
        if (paths.Count > 0) SessionCheckpoint.Save(s, [.. paths]);
    }
}
