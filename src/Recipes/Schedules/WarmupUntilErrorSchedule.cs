namespace Trainer.Recipes.Schedules;

/// <summary>
/// The ResNet paper's warmup for its 110-layer CIFAR net (section 4.2): train at a small rate
/// (0.01) "until the training error is below 80% (about 400 iterations)", then go back to the
/// schedule (0.1). The training error is the mean of the last <see cref="Window"/> batches;
/// once the condition is met it stays met (saved in checkpoints as warmup_done).
/// </summary>
internal sealed class WarmupUntilErrorSchedule(LrSchedule main, double warmupLr, double errorThreshold) : LrSchedule(main.BaseLr)
{
    public const int Window = 20;
    readonly Queue<double> _recent = new();
    bool _done;

    /// <summary>True once the training error has fallen below the threshold.</summary>
    public bool Done => _done;

    public override double LearningRate(int completedEpochs, long completedIterations) =>
        _done ? main.LearningRate(completedEpochs, completedIterations) : warmupLr;

    public override void IterationEnded(double trainError)
    {
        if (_done) return;
        _recent.Enqueue(trainError);
        if (_recent.Count > Window) _recent.Dequeue();
        if (_recent.Count == Window && _recent.Average() < errorThreshold) _done = true;
    }

    public override void EpochEnded(IReadOnlyDictionary<string, double> metrics) => main.EpochEnded(metrics);

    // The window is state too: a checkpoint written mid-epoch (or between epochs, before the
    // condition is met) continues with the same recent errors as the uninterrupted run.
    public override Dictionary<string, double> State()
    {
        var state = new Dictionary<string, double>(main.State()) { ["warmup_done"] = _done ? 1 : 0, ["warmup_recent_count"] = _recent.Count };
        int i = 0;
        foreach (var error in _recent) state[$"warmup_recent_{i++}"] = error;
        return state;
    }

    public override void LoadState(IReadOnlyDictionary<string, double> state)
    {
        main.LoadState(state);
        _done = state.TryGetValue("warmup_done", out var done) && done > 0;
        _recent.Clear();
        int count = state.TryGetValue("warmup_recent_count", out var n) ? (int)n : 0;
        for (int i = 0; i < count; i++)
            if (state.TryGetValue($"warmup_recent_{i}", out var error)) _recent.Enqueue(error);
    }
}
