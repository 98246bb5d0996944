namespace Trainer.Recipes.Schedules;

/// <summary>
/// Two-phase fine-tuning: the wrapped schedule's rate for the first <c>firstEpochs</c> epochs
/// (the head alone), then that rate times <c>factor</c> once more layers train.
/// </summary>
internal sealed class PhaseSchedule(LrSchedule main, int firstEpochs, double factor) : LrSchedule(main.BaseLr)
{
    public override double LearningRate(int completedEpochs, long completedIterations) =>
        main.LearningRate(completedEpochs, completedIterations) * (completedEpochs < firstEpochs ? 1 : factor);

    public override void EpochEnded(IReadOnlyDictionary<string, double> metrics) => main.EpochEnded(metrics);

    public override void IterationEnded(double trainError) => main.IterationEnded(trainError);

    public override Dictionary<string, double> State() => main.State();

    public override void LoadState(IReadOnlyDictionary<string, double> state) => main.LoadState(state);
}
