using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Sinks;

/// <summary>A callback (a sink of the caller's own) failed: which one, in which hook, where the run stood, and what the run folder keeps.</summary>
public sealed class CallbackFailedException(string message, Exception inner) : Exception(message, inner)
{
    internal CallbackFailedException WithKept(string kept) => new($"{Message}; {kept}", InnerException!);
}

/// <summary>
/// A caller's sink, wrapped so that an exception it throws stops the run with a message naming
/// the sink, the hook and the step (the built-in sinks have written that step's files already).
/// The caller owns its sink: the run does not dispose it, so one sink can serve a run and its resume.
/// </summary>
sealed class GuardedSink(TrainingSink inner) : TrainingSink
{
    public override void RunStarted(TrainingSession session) => Guard(session, nameof(RunStarted), () => inner.RunStarted(session));
    public override void BatchEnded(TrainingSession session, BatchProgress progress) => Guard(session, nameof(BatchEnded), () => inner.BatchEnded(session, progress));
    public override void EpochEnded(TrainingSession session, EpochRecord epoch) => Guard(session, nameof(EpochEnded), () => inner.EpochEnded(session, epoch));
    public override void RunEnded(TrainingSession session) => Guard(session, nameof(RunEnded), () => inner.RunEnded(session));
    public override void RunStopped(TrainingSession session) => Guard(session, nameof(RunStopped), () => inner.RunStopped(session));
    public override void RolledBack(TrainingSession session, RollbackRecord rollback) => Guard(session, nameof(RolledBack), () => inner.RolledBack(session, rollback));

    void Guard(TrainingSession session, string hook, Action call)
    {
        try { call(); }
        catch (Exception e)
        {
            throw new CallbackFailedException($"callback {inner.GetType().Name}.{hook} failed at step {session.Step} (epoch {session.Epoch + (session.Progress.MidEpoch ? 1 : 0)}): {e.GetType().Name}: {e.Message}", e);
        }
    }
}
