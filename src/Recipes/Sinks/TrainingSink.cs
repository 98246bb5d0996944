using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// Where a batch stands within its epoch (epoch is 1-based here, for display): running epoch
/// averages, and this batch's own loss and accuracy at global iteration <c>Step</c> (1-based).
/// </summary>
public sealed record BatchProgress(int Epoch, int TotalEpochs, int Batch, int BatchesInEpoch, double Loss, double Top1, double ImagesPerSecond, TimeSpan Elapsed,
    long Step, double Lr, double BatchLoss, double BatchTop1, long BatchSize);

/// <summary>One finished epoch: its number (1-based), the iterations so far, its metrics and wall time.</summary>
public sealed record EpochRecord(int Epoch, long Step, IReadOnlyDictionary<string, double> Metrics, double Seconds, bool IsBest, double TrainImagesPerSecond);

/// <summary>
/// A rollback after bad numbers (train.on_nan: rollback): the step that went bad (1-based) in
/// which epoch (1-based), what was wrong, the step the run went back to, the rate multiplier
/// now in force, and this rollback's number out of the allowed.
/// </summary>
public sealed record RollbackRecord(long BadStep, int Epoch, string Problem, long BackToStep, double LrScale, int Rollback, int MaxRollbacks);

/// <summary>
/// Something that watches a run: console, CSV, TensorBoard, checkpoints. Each hook does nothing
/// by default, so a sink overrides only what it needs and the engine never changes for a new one.
/// </summary>
public abstract class TrainingSink : IDisposable
{
    public virtual void RunStarted(TrainingSession session) { }
    public virtual void BatchEnded(TrainingSession session, BatchProgress progress) { }
    public virtual void EpochEnded(TrainingSession session, EpochRecord epoch) { }
    public virtual void RunEnded(TrainingSession session) { }
    /// <summary>The run stopped on request between two steps (the session's <c>Progress</c> says where in the epoch); it can resume from here.</summary>
    public virtual void RunStopped(TrainingSession session) { }
    /// <summary>The session went back to its last good state after bad numbers; steps after <c>session.Step</c> will be trained again.</summary>
    public virtual void RolledBack(TrainingSession session, RollbackRecord rollback) { }
    public virtual void Dispose() => GC.SuppressFinalize(this);
}
