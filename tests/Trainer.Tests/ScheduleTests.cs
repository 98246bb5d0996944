using Trainer.Recipes.Config;
using Trainer.Recipes.Schedules;
using Xunit;

namespace Trainer.Tests;

public class ScheduleTests
{
    static Dictionary<string, double> Metric(string name, double value) => new() { [name] = value };

    [Fact]
    public void Plateau_follows_pytorch_reduce_lr_on_plateau_with_threshold_cooldown_and_min_lr()
    {
        var schedule = new PlateauSchedule(0.1, new ScheduleConfig
        {
            Monitor = "val_loss", Factor = 0.1, Patience = 2, Threshold = 0.01, ThresholdMode = ThresholdMode.Rel, Cooldown = 1, MinLr = 0.0005,
        });
        double[] losses = [1.0, 0.995, 0.98, 0.985, 0.99, 0.975, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99];
        // Worked by hand from torch.optim.lr_scheduler.ReduceLROnPlateau's step():
        // 0.995 is not below 1.0 * (1 - 0.01); 0.98 is; 0.975 is not below 0.98 * 0.99, so the
        // third bad epoch (epoch 6) exceeds patience 2; each cut is followed by one cooldown epoch;
        // the third cut is clamped to min_lr and a fourth changes nothing.
        double[] expected = [0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005];
        var actual = losses.Select(l => { schedule.EpochEnded(Metric("val_loss", l)); return schedule.LearningRate(0, 0); }).ToArray();
        Assert.Equal(expected, actual, (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void Plateau_on_accuracy_maximises_with_an_absolute_threshold()
    {
        var schedule = new PlateauSchedule(0.1, new ScheduleConfig { Monitor = "val_top1", Patience = 0, Threshold = 0.01, ThresholdMode = ThresholdMode.Abs });
        var lrs = new[] { 0.5, 0.505, 0.6, 0.6 }.Select(a => { schedule.EpochEnded(Metric("val_top1", a)); return schedule.LearningRate(0, 0); }).ToArray();
        Assert.Equal([0.1, 0.01, 0.01, 0.001], lrs, (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void Plateau_state_survives_a_save_and_load()
    {
        var config = new ScheduleConfig { Patience = 1 };
        var first = new PlateauSchedule(0.1, config);
        foreach (var l in new[] { 1.0, 1.0 }) first.EpochEnded(Metric("val_loss", l));
        var second = new PlateauSchedule(0.1, config);
        second.LoadState(first.State());
        first.EpochEnded(Metric("val_loss", 1.0));
        second.EpochEnded(Metric("val_loss", 1.0));
        Assert.Equal(0.01, first.LearningRate(0, 0), 12);
        Assert.Equal(first.LearningRate(0, 0), second.LearningRate(0, 0));
    }

    [Fact]
    public void The_papers_cifar_schedule_divides_by_ten_at_32k_and_48k_iterations()
    {
        var schedule = new MultiStepSchedule(0.1, [32000, 48000], 0.1, ScheduleUnit.Iterations);
        Assert.Equal(0.1, schedule.LearningRate(0, 0), 12);
        Assert.Equal(0.1, schedule.LearningRate(81, 31_999), 12);
        Assert.Equal(0.01, schedule.LearningRate(82, 32_000), 12);
        Assert.Equal(0.01, schedule.LearningRate(122, 47_999), 12);
        Assert.Equal(0.001, schedule.LearningRate(123, 48_000), 12);
        Assert.Equal(0.001, schedule.LearningRate(163, 63_999), 12);
    }

    [Fact]
    public void Epoch_milestones_and_steps_count_completed_epochs()
    {
        var multi = new MultiStepSchedule(0.1, [2, 4], 0.5, ScheduleUnit.Epochs);
        Assert.Equal([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], Enumerable.Range(0, 6).Select(e => multi.LearningRate(e, 1000 * e)), (a, b) => Math.Abs(a - b) < 1e-12);
        var step = new StepSchedule(0.1, 3, 0.1, ScheduleUnit.Epochs);
        Assert.Equal([0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001], Enumerable.Range(0, 7).Select(e => step.LearningRate(e, 0)), (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void Warmup_climbs_linearly_from_its_start_rate_then_hands_over_to_the_schedule()
    {
        var main = new MultiStepSchedule(0.1, [200, 300], 0.1, ScheduleUnit.Iterations);
        var schedule = new WarmupSchedule(main, 100, 0.01);
        // torch's LinearLR(start_factor=0.1, total_iters=100) in front of MultiStepLR: 0.01 + 0.09 * t / 100.
        Assert.Equal(0.01, schedule.LearningRate(0, 0), 12);
        Assert.Equal(0.055, schedule.LearningRate(0, 50), 12);
        Assert.Equal(0.0991, schedule.LearningRate(1, 99), 12);
        Assert.Equal(0.1, schedule.LearningRate(1, 100), 12);
        Assert.Equal(0.01, schedule.LearningRate(3, 200), 12);
        Assert.Equal(0.001, schedule.LearningRate(4, 300), 12);
    }

    [Fact]
    public void The_factory_puts_a_warmup_in_front_of_any_schedule_when_asked()
    {
        var plain = ScheduleFactory.Create(new ScheduleConfig { Name = "step", StepSize = 1 }, 0.1);
        Assert.IsType<StepSchedule>(plain);
        var warmed = ScheduleFactory.Create(new ScheduleConfig { Name = "plateau", WarmupIterations = 10, WarmupLr = 0.0 }, 0.1);
        Assert.IsType<WarmupSchedule>(warmed);
        Assert.Equal(0.05, warmed.LearningRate(0, 5), 12);
    }
}
