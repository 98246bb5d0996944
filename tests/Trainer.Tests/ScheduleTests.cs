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

    static void Expect(LrSchedule schedule, params (int Epoch, long Iteration, double Lr)[] points)
    {
        foreach (var (epoch, iteration, lr) in points)
            Assert.True(Math.Abs(schedule.LearningRate(epoch, iteration) - lr) < 1e-12,
                $"epoch {epoch}, iteration {iteration}: {schedule.LearningRate(epoch, iteration)} instead of {lr}");
    }

    [Fact]
    public void Exponential_decay_is_mobilenet_v2s_098_per_epoch()
    {
        var schedule = ScheduleFactory.Create(new ScheduleConfig { Name = "exponential", Factor = 0.98 }, 0.045);
        // 0.045 * 0.98^t: 0.045, 0.0441, 0.043218; after 100 epochs 0.045 * 0.132620... = 0.00596790...
        Expect(schedule, (0, 0, 0.045), (1, 999, 0.0441), (2, 0, 0.043218), (100, 0, 0.045 * Math.Pow(0.98, 100)));
        Assert.Equal(0.0059679, schedule.LearningRate(100, 0), 7);
    }

    [Fact]
    public void Googlenets_4_percent_every_8_epochs_is_a_step_schedule()
    {
        var schedule = ScheduleFactory.Create(new ScheduleConfig { Name = "step", StepSize = 8, Factor = 0.96 }, 0.01);
        Expect(schedule, (0, 0, 0.01), (7, 0, 0.01), (8, 0, 0.0096), (15, 0, 0.0096), (16, 0, 0.009216), (24, 0, 0.00884736));
    }

    [Fact]
    public void Cosine_falls_along_half_a_cosine_to_min_lr_over_the_run()
    {
        var length = new RunLength(Epochs: 10, Iterations: 1000, IterationsPerEpoch: 100);
        var byEpoch = ScheduleFactory.Create(new ScheduleConfig { Name = "cosine", MinLr = 0.001 }, 0.1, length);
        // 0.001 + 0.099 (1 + cos(pi t / 10)) / 2: t=5 -> 0.0505; t=2 -> 0.001 + 0.0495 (1 + 0.809017) = 0.0905463...
        Expect(byEpoch, (0, 0, 0.1), (5, 500, 0.0505), (10, 1000, 0.001), (12, 0, 0.001));
        Assert.Equal(0.09054634, byEpoch.LearningRate(2, 0), 8);
        var byIteration = ScheduleFactory.Create(new ScheduleConfig { Name = "cosine", Unit = ScheduleUnit.Iterations }, 0.1, length);
        // 0.05 (1 + cos(pi 250 / 1000)) = 0.05 (1 + 0.70710678) = 0.08535534
        Assert.Equal(0.08535534, byIteration.LearningRate(2, 250), 8);
        Assert.Equal(0.05, byIteration.LearningRate(5, 500), 12);
    }

    [Fact]
    public void Polynomial_decay_reaches_min_lr_at_the_end()
    {
        var length = new RunLength(Epochs: 4, Iterations: 400, IterationsPerEpoch: 100);
        var schedule = ScheduleFactory.Create(new ScheduleConfig { Name = "poly", Power = 2, Unit = ScheduleUnit.Iterations }, 0.1, length);
        // 0.1 (1 - t/400)^2: t=100 -> 0.05625, t=200 -> 0.025, t=400 -> 0
        Expect(schedule, (0, 0, 0.1), (1, 100, 0.05625), (2, 200, 0.025), (4, 400, 0));
        var linear = ScheduleFactory.Create(new ScheduleConfig { Name = "poly", MinLr = 0.01 }, 0.1, length);
        Expect(linear, (1, 0, 0.0775), (4, 0, 0.01));
    }

    [Fact]
    public void Warmup_counted_in_epochs_converts_to_iterations_in_front_of_cosine()
    {
        var length = new RunLength(Epochs: 10, Iterations: 1000, IterationsPerEpoch: 100);
        var schedule = ScheduleFactory.Create(new ScheduleConfig { Name = "cosine", WarmupEpochs = 2, WarmupLr = 0 }, 0.1, length);
        // Over the first 200 iterations: 0 -> cosine's rate; at iteration 100 half of cosine(epoch 1) = 0.5 * 0.05 (1 + cos(pi/10)).
        Expect(schedule, (0, 0, 0), (1, 100, 0.5 * 0.05 * (1 + Math.Cos(Math.PI / 10))), (2, 200, 0.05 * (1 + Math.Cos(Math.PI / 5))));
    }

    [Fact]
    public void Resnet110_warmup_holds_001_until_the_training_error_falls_below_a_level()
    {
        // Errors and level chosen exact in binary so the 20-batch means are exact.
        var schedule = ScheduleFactory.Create(new ScheduleConfig
        {
            Name = "multistep", Unit = ScheduleUnit.Iterations, Milestones = [32000, 48000], WarmupLr = 0.01, WarmupUntilError = 0.75,
        }, 0.1);
        long iteration = 0;
        // 20 batches at 87.5% error, then 62.5%: the 20-batch mean falls below 75% after 11 of them.
        foreach (var error in Enumerable.Repeat(0.875, 20).Concat(Enumerable.Repeat(0.625, 10)))
        {
            Assert.Equal(0.01, schedule.LearningRate(0, iteration), 12);
            schedule.IterationEnded(error);
            iteration++;
        }
        Assert.Equal(0.01, schedule.LearningRate(0, iteration), 12);   // mean of the last 20: (10 x 0.875 + 10 x 0.625) / 20 = 0.75, not below
        schedule.IterationEnded(0.625);
        iteration++;
        Assert.Equal(0.1, schedule.LearningRate(0, iteration), 12);    // 0.7375: below; from now on the schedule's rate
        schedule.IterationEnded(0.99);
        Assert.Equal(0.1, schedule.LearningRate(0, iteration + 1), 12);
        Assert.Equal(0.01, schedule.LearningRate(0, 32000), 12);      // the milestones count from iteration 0, as in the paper

        var restored = ScheduleFactory.Create(new ScheduleConfig { Name = "multistep", Milestones = [32000], Unit = ScheduleUnit.Iterations, WarmupLr = 0.01, WarmupUntilError = 0.75 }, 0.1);
        Assert.Equal(0.01, restored.LearningRate(0, 500), 12);
        restored.LoadState(schedule.State());
        Assert.Equal(0.1, restored.LearningRate(0, 500), 12);
    }
}
