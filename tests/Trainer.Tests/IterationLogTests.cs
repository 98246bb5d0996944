using Trainer.Data.Transforms;
using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Optim;
using Trainer.Recipes.Schedules;
using Trainer.Recipes.Sinks;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>iterations.csv's loss_scale column: written by fp16 runs, and kept consistent when a resume changes the precision.</summary>
public class IterationLogTests
{
    static TrainingSession Session(ClassifierModel model, Optimizer optimizer, MixedPrecision? mixed, long step) => new()
    {
        Config = new RunConfig(), Model = model, Optimizer = optimizer, Schedule = new ConstantSchedule(0.1), Device = CPU,
        Normalization = new Normalization(NormalizationMode.Channel, [0, 0, 0], [1, 1, 1]), Classes = ["a", "b"],
        TrainSamples = 8, ValidationSamples = 8, BatchesPerEpoch = 4, Mixed = mixed, Step = step,
    };

    static BatchProgress Batch(long step) => new(1, 2, (int)step, 4, 2.0, 0.5, 10, TimeSpan.FromSeconds(1), step, 0.1, 2.0, 0.5, 2);

    [Fact]
    public void A_run_resumed_in_fp16_adds_the_loss_scale_and_keeps_its_earlier_rows_and_back()
    {
        using var dir = new TempDir();
        var path = dir["iterations.csv"];
        File.WriteAllText(path, "step,epoch,lr,train_loss,train_top1\n1,1,0.1,2.5,0\n2,1,0.1,2.4,0.5\n");   // as an fp32 run wrote it
        using var model = ModelRegistry.Create("lenet5");
        using var sgd = new Sgd(ParameterGroup.Split(model, 0, false), 0.1, 0.9, 0, false);

        using (var mixed = new MixedPrecision(model, ModelRegistry.Create("lenet5"), Precision.Fp16, initialScale: 1024))
        {
            var fp16 = Session(model, sgd, mixed, step: 2);
            var sink = new IterationLogSink(path, 1, null);
            sink.RunStarted(fp16);
            sink.BatchEnded(fp16, Batch(3));
        }
        Assert.Equal(["step,epoch,lr,train_loss,train_top1,loss_scale", "1,1,0.1,2.5,0,", "2,1,0.1,2.4,0.5,", "3,1,0.1,2,0.5,1024"], File.ReadAllLines(path));

        // Every row keeps the header's columns, so the repair on the next resume keeps them all.
        Assert.Equal(0, RunFileRepair.TrimCsv(path, "step", 3));
        new IterationLogSink(path, 1, null).RunStarted(Session(model, sgd, mixed: null, step: 3));
        Assert.Equal(["step,epoch,lr,train_loss,train_top1", "1,1,0.1,2.5,0", "2,1,0.1,2.4,0.5", "3,1,0.1,2,0.5"], File.ReadAllLines(path));
    }
}
