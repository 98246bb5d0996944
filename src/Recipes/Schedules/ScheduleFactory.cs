using Trainer.Recipes.Config;

namespace Trainer.Recipes.Schedules;

/// <summary>How long a run is: what cosine and polynomial schedules decay over, and what epoch warmups convert with.</summary>
internal sealed record RunLength(int Epochs, long Iterations, int IterationsPerEpoch)
{
    /// <summary>The length train.* asks for: train.iterations, when set, wins over train.epochs.</summary>
    public static RunLength Of(TrainConfig t, int iterationsPerEpoch) => t.Iterations > 0
        ? new RunLength((int)((t.Iterations + iterationsPerEpoch - 1) / iterationsPerEpoch), t.Iterations, iterationsPerEpoch)
        : new RunLength(t.Epochs, (long)t.Epochs * iterationsPerEpoch, iterationsPerEpoch);
}

internal static class ScheduleFactory
{
    public static readonly string[] Names = ["plateau", "multistep", "step", "exponential", "cosine", "poly", "constant"];

    /// <summary>The schedule of <paramref name="c"/>, with its warmups in front; <paramref name="length"/> is needed by cosine, poly and warmup_epochs.</summary>
    public static LrSchedule Create(ScheduleConfig c, double baseLr, RunLength? length = null)
    {
        var schedule = CreateMain(c, baseLr, length);
        long warmup = c.WarmupIterations;
        if (c.WarmupEpochs > 0) warmup = (long)Math.Round(c.WarmupEpochs * Need(length, "warmup_epochs").IterationsPerEpoch);
        if (warmup > 0) schedule = new WarmupSchedule(schedule, (int)warmup, c.WarmupLr);
        if (c.WarmupUntilError > 0) schedule = new WarmupUntilErrorSchedule(schedule, c.WarmupLr, c.WarmupUntilError);
        return schedule;
    }

    static LrSchedule CreateMain(ScheduleConfig c, double baseLr, RunLength? length) => c.Name switch
    {
        "plateau" => new PlateauSchedule(baseLr, c),
        "multistep" => new MultiStepSchedule(baseLr, c.Milestones, c.Factor, c.Unit),
        "step" => new StepSchedule(baseLr, c.StepSize, c.Factor, c.Unit),
        "exponential" => new ExponentialSchedule(baseLr, c.Factor, c.Unit),
        "cosine" => new CosineSchedule(baseLr, c.MinLr, Span(c, Need(length, "cosine")), c.Unit),
        "poly" => new PolynomialSchedule(baseLr, c.MinLr, c.Power, Span(c, Need(length, "poly")), c.Unit),
        "constant" => new ConstantSchedule(baseLr),
        _ => throw new ArgumentException($"unknown schedule '{c.Name}'"),
    };

    static long Span(ScheduleConfig c, RunLength length) => Math.Max(1, c.Unit == ScheduleUnit.Epochs ? length.Epochs : length.Iterations);

    static RunLength Need(RunLength? length, string what) =>
        length ?? throw new ArgumentException($"the {what} schedule needs the run's length");
}
