using Trainer.Recipes.Config;

namespace Trainer.Recipes.Schedules;

public static class ScheduleFactory
{
    public static LrSchedule Create(ScheduleConfig c, double baseLr)
    {
        var schedule = CreateMain(c, baseLr);
        return c.WarmupIterations > 0 ? new WarmupSchedule(schedule, c.WarmupIterations, c.WarmupLr) : schedule;
    }

    static LrSchedule CreateMain(ScheduleConfig c, double baseLr) => c.Name switch
    {
        "plateau" => new PlateauSchedule(baseLr, c),
        "multistep" => new MultiStepSchedule(baseLr, c.Milestones, c.Factor, c.Unit),
        "step" => new StepSchedule(baseLr, c.StepSize, c.Factor, c.Unit),
        "constant" => new ConstantSchedule(baseLr),
        _ => throw new ArgumentException($"unknown schedule '{c.Name}'"),
    };
}
