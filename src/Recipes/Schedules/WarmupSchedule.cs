namespace Trainer.Recipes.Schedules;

/// <summary>
/// Linear warmup in front of any schedule: over the first <c>iterations</c> iterations the rate
/// climbs from <c>startLr</c> to what the wrapped schedule gives (torch's LinearLR followed by the
/// main schedule). The ResNet paper warmed its 110-layer CIFAR net at 0.01; deep plain and
/// residual nets at lr 0.1 need it at short budgets too.
/// </summary>
internal sealed class WarmupSchedule(LrSchedule main, int iterations, double startLr) : LrSchedule(main.BaseLr)
{
    public override double LearningRate(int completedEpochs, long completedIterations)
    {
        double target = main.LearningRate(completedEpochs, completedIterations);
        if (completedIterations >= iterations) return target;
        return startLr + (target - startLr) * completedIterations / iterations;
    }

    public override void EpochEnded(IReadOnlyDictionary<string, double> metrics) => main.EpochEnded(metrics);

    public override void IterationEnded(double trainError) => main.IterationEnded(trainError);

    public override Dictionary<string, double> State() => main.State();

    public override void LoadState(IReadOnlyDictionary<string, double> state) => main.LoadState(state);
}
