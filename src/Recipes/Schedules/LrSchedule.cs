namespace Trainer.Recipes.Schedules;

/// <summary>
/// A learning-rate schedule. The engine asks for the rate before every iteration and reports
/// each finished epoch; the schedule's whole state is a few numbers that checkpoints keep.
/// </summary>
internal abstract class LrSchedule
{
    protected LrSchedule(double baseLr) => BaseLr = baseLr;

    public double BaseLr { get; }

    /// <summary>The rate for the iteration after <paramref name="completedIterations"/> iterations in <paramref name="completedEpochs"/> epochs.</summary>
    public abstract double LearningRate(int completedEpochs, long completedIterations);

    /// <summary>Called once per finished epoch with its metrics (plateau schedules react here).</summary>
    public virtual void EpochEnded(IReadOnlyDictionary<string, double> metrics) { }

    /// <summary>Called after every iteration with that batch's training top-1 error (warmup until an error level reacts here).</summary>
    public virtual void IterationEnded(double trainError) { }

    public virtual Dictionary<string, double> State() => new();

    /// <summary>Where a run stands in <paramref name="unit"/>: completed epochs or completed iterations.</summary>
    protected static long Position(Config.ScheduleUnit unit, int completedEpochs, long completedIterations) =>
        unit == Config.ScheduleUnit.Epochs ? completedEpochs : completedIterations;

    public virtual void LoadState(IReadOnlyDictionary<string, double> state) { }
}

/// <summary>A fixed rate.</summary>
internal sealed class ConstantSchedule(double baseLr) : LrSchedule(baseLr)
{
    public override double LearningRate(int completedEpochs, long completedIterations) => BaseLr;
}
