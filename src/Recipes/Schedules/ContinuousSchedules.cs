using Trainer.Recipes.Config;

namespace Trainer.Recipes.Schedules;

/// <summary>
/// Multiplies the rate by <c>factor</c> after every epoch (or iteration): base * factor^t, torch's
/// ExponentialLR. MobileNetV2 used 0.98 per epoch; GoogLeNet's "4% every 8 epochs" is the step
/// schedule with step_size 8 and factor 0.96.
/// </summary>
internal sealed class ExponentialSchedule(double baseLr, double factor, ScheduleUnit unit) : LrSchedule(baseLr)
{
    public override double LearningRate(int completedEpochs, long completedIterations) =>
        BaseLr * Math.Pow(factor, Position(unit, completedEpochs, completedIterations));
}

/// <summary>
/// Half a cosine from the base rate down to <c>minLr</c> over the run (Loshchilov and Hutter's
/// SGDR without restarts; torch's CosineAnnealingLR with T_max the run's length):
/// min + (base - min) (1 + cos(pi t / T)) / 2, t and T in epochs or iterations.
/// </summary>
internal sealed class CosineSchedule(double baseLr, double minLr, long length, ScheduleUnit unit) : LrSchedule(baseLr)
{
    public override double LearningRate(int completedEpochs, long completedIterations)
    {
        double t = Math.Min(Position(unit, completedEpochs, completedIterations), length);
        return minLr + (BaseLr - minLr) * (1 + Math.Cos(Math.PI * t / length)) / 2;
    }
}

/// <summary>
/// Polynomial decay to <c>minLr</c> over the run: min + (base - min) (1 - t / T)^power
/// (torch's PolynomialLR when min is 0; power 1 is linear decay).
/// </summary>
internal sealed class PolynomialSchedule(double baseLr, double minLr, double power, long length, ScheduleUnit unit) : LrSchedule(baseLr)
{
    public override double LearningRate(int completedEpochs, long completedIterations)
    {
        double t = Math.Min(Position(unit, completedEpochs, completedIterations), length);
        return minLr + (BaseLr - minLr) * Math.Pow(1 - t / length, power);
    }
}
