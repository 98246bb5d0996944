using Trainer.Recipes.Config;

namespace Trainer.Recipes.Schedules;

/// <summary>
/// Divides the rate when a monitored metric stops improving, with the semantics of PyTorch's
/// ReduceLROnPlateau: an epoch is better when it beats the best by the threshold (relative or
/// absolute); after more than <c>patience</c> epochs without one the rate is multiplied by
/// <c>factor</c> (not below <c>min_lr</c>, and only if the change exceeds <c>eps</c>), then
/// <c>cooldown</c> epochs pass during which bad epochs are not counted.
/// </summary>
internal sealed class PlateauSchedule : LrSchedule
{
    readonly string _monitor;
    readonly bool _maximize;
    readonly double _factor, _threshold, _minLr, _eps;
    readonly ThresholdMode _thresholdMode;
    readonly int _patience, _cooldown;

    double _lr, _best;
    int _badEpochs, _cooldownLeft;

    public PlateauSchedule(double baseLr, ScheduleConfig c) : base(baseLr)
    {
        _monitor = c.Monitor;
        _maximize = c.Monitor is "val_top1" or "val_top5";
        _factor = c.Factor; _threshold = c.Threshold; _thresholdMode = c.ThresholdMode;
        _patience = c.Patience; _cooldown = c.Cooldown; _minLr = c.MinLr; _eps = c.Eps;
        _lr = baseLr;
        _best = _maximize ? double.NegativeInfinity : double.PositiveInfinity;
    }

    public override double LearningRate(int completedEpochs, long completedIterations) => _lr;

    public override void EpochEnded(IReadOnlyDictionary<string, double> metrics)
    {
        double current = metrics[_monitor];
        if (IsBetter(current)) { _best = current; _badEpochs = 0; }
        else _badEpochs++;
        if (_cooldownLeft > 0) { _cooldownLeft--; _badEpochs = 0; }
        if (_badEpochs > _patience)
        {
            double next = Math.Max(_lr * _factor, _minLr);
            if (_lr - next > _eps) _lr = next;
            _cooldownLeft = _cooldown;
            _badEpochs = 0;
        }
    }

    bool IsBetter(double a) => (_maximize, _thresholdMode) switch
    {
        (false, ThresholdMode.Rel) => a < _best * (1 - _threshold),
        (false, ThresholdMode.Abs) => a < _best - _threshold,
        (true, ThresholdMode.Rel) => a > _best * (1 + _threshold),
        _ => a > _best + _threshold,
    };

    public override Dictionary<string, double> State() => new()
    {
        ["lr"] = _lr, ["best"] = _best, ["bad_epochs"] = _badEpochs, ["cooldown_left"] = _cooldownLeft,
    };

    public override void LoadState(IReadOnlyDictionary<string, double> state)
    {
        _lr = state["lr"]; _best = state["best"];
        _badEpochs = (int)state["bad_epochs"]; _cooldownLeft = (int)state["cooldown_left"];
    }
}
