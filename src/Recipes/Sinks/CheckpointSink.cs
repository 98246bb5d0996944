using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// checkpoints/last.ckpt every checkpoint.every_epochs epochs, every checkpoint.every_steps
/// optimizer steps inside an epoch (a mid-epoch checkpoint), when the run stops on request, and
/// at the end; checkpoints/best.ckpt whenever validation top-1 improves. Each is written to a
/// temporary file, then renamed.
/// </summary>
internal sealed class CheckpointSink(string lastPath, string bestPath) : TrainingSink
{
    /// <summary>The optimizer steps of the state last.ckpt holds; null while there is none.</summary>
    public long? LastSavedStep { get; private set; }

    // A rollback returns to a saved step but lowers the rate: that state differs from the file's.
    bool _rolledBack;

    public override void RunStarted(TrainingSession s)
    {
        if (File.Exists(lastPath)) LastSavedStep = s.Step;
    }

    public override void BatchEnded(TrainingSession s, BatchProgress p)
    {
        if (!s.Config.Checkpoint.DueAfterStep(s.Step)) return;
        // The epoch end right after this batch writes last.ckpt anyway.
        bool epochEndWrites = s.Finished || (p.Batch == p.BatchesInEpoch && (p.Epoch == p.TotalEpochs || p.Epoch % s.Config.Checkpoint.EveryEpochs == 0));
        if (!epochEndWrites) SaveLast(s);
    }

    public override void EpochEnded(TrainingSession s, EpochRecord e)
    {
        bool last = s.Finished || e.Epoch % s.Config.Checkpoint.EveryEpochs == 0;
        var paths = new List<string>();
        if (last) paths.Add(lastPath);
        if (e.IsBest) paths.Add(bestPath);
        if (paths.Count > 0) SessionCheckpoint.Save(s, [.. paths]);
        if (last) Saved(s);
    }

    public override void RunStopped(TrainingSession s)
    {
        if (LastSavedStep != s.Step || _rolledBack) SaveLast(s);
    }

    /// <summary>A run that ended before its length (a sink's EndAfterThisEpoch) between two due epochs still ends saved.</summary>
    public override void RunEnded(TrainingSession s)
    {
        if (LastSavedStep != s.Step || _rolledBack) SaveLast(s);
    }

    public override void RolledBack(TrainingSession s, RollbackRecord rollback) => _rolledBack = true;

    void SaveLast(TrainingSession s)
    {
        SessionCheckpoint.Save(s, lastPath);
        Saved(s);
    }

    void Saved(TrainingSession s)
    {
        LastSavedStep = s.Step;
        _rolledBack = false;
    }
}
