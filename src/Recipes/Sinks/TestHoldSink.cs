using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// A test seam (docs/reliability.md): with TRAINER_TEST_HOLD_AFTER_STEP=k, a rank that finished
/// step k (its rows written, the sinks before this one told) waits there until a stop signal
/// arrives, so that a test which kills or stops a short run always meets it under way instead of
/// racing its end. After <see cref="Patience"/> without a signal it says so on stderr, naming the
/// variable, and goes on.
/// </summary>
internal sealed class TestHoldSink(long step, CancellationToken stop, TextWriter error) : TrainingSink
{
    public const string Variable = "TRAINER_TEST_HOLD_AFTER_STEP";
    public static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    /// <summary>The seam when the variable asks for it, else null.</summary>
    public static TestHoldSink? FromEnvironment(CancellationToken stop, TextWriter error) =>
        long.TryParse(Environment.GetEnvironmentVariable(Variable), out long step) && step > 0 ? new TestHoldSink(step, stop, error) : null;

    public override void BatchEnded(TrainingSession session, BatchProgress progress)
    {
        if (session.Step != step) return;
        if (!stop.WaitHandle.WaitOne(Patience))
            error.WriteLine($"trainer: {Variable}={step}: no stop signal came in {Patience.TotalMinutes:F0} minutes; going on");
    }
}
