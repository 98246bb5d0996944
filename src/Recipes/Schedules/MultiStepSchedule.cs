using Trainer.Recipes.Config;

namespace Trainer.Recipes.Schedules;

/// <summary>
/// Multiplies the rate by <c>factor</c> at each milestone (torch's MultiStepLR), counted in epochs
/// or iterations: the rate is base * factor^(number of milestones already reached). The ResNet
/// paper's CIFAR schedule is milestones 32000 and 48000 iterations, factor 0.1.
/// </summary>
internal sealed class MultiStepSchedule(double baseLr, IReadOnlyList<int> milestones, double factor, ScheduleUnit unit) : LrSchedule(baseLr)
{
    public override double LearningRate(int completedEpochs, long completedIterations)
    {
        long t = Position(unit, completedEpochs, completedIterations);
        int reached = milestones.Count(m => m <= t);
        return BaseLr * Math.Pow(factor, reached);
    }
}

/// <summary>Multiplies the rate by <c>factor</c> every <c>stepSize</c> epochs or iterations (torch's StepLR).</summary>
internal sealed class StepSchedule(double baseLr, int stepSize, double factor, ScheduleUnit unit) : LrSchedule(baseLr)
{
    public override double LearningRate(int completedEpochs, long completedIterations)
    {
        long t = Position(unit, completedEpochs, completedIterations);
        return BaseLr * Math.Pow(factor, t / stepSize);
    }
}
