using Trainer.Data;
using Trainer.Data.Cifar;
using Trainer.Data.Loading;
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

public class EngineTests
{
    [Fact]
    public void Resnet20_overfits_one_small_batch_to_full_training_accuracy()
    {
        manual_seed(0);
        var data = CifarSample.LoadTrain().Subset(Enumerable.Range(0, 32).ToList());
        var loader = new BatchLoader(new CifarSource(data, new CifarAugmentation(Train: false), Normalization.Measure(data, NormalizationMode.Channel)), 32, shuffle: false, seed: 0);
        using var batch = loader.Epoch(0).Single();
        using var model = ModelRegistry.Create("resnet20");
        using var sgd = new Sgd(ParameterGroup.Split(model, 0, false), 0.05, 0.9, 0, false);
        model.train();
        var meter = new AccuracyMeter();
        for (int step = 0; step < 120; step++)
        {
            using var scope = NewDisposeScope();
            var logits = model.forward(batch.Images);
            var loss = nn.functional.cross_entropy(logits, batch.Labels);
            sgd.ZeroGrad();
            loss.backward();
            sgd.Step();
            if (step == 119) meter.Add(logits.detach(), batch.Labels, loss);
        }
        Assert.True(meter.Top1 >= 0.97, $"training accuracy on the one batch is {meter.Top1:P1}");
        Assert.True(meter.Loss < 0.2, $"training loss on the one batch is {meter.Loss:F3}");
    }

    sealed class LiveTensorCounter : TrainingSink
    {
        public List<long> AfterEpoch { get; } = new();
        // Settled: what is counted is what is still reachable, not what a finalizer has yet to free.
        public override void EpochEnded(TrainingSession s, EpochRecord e) => AfterEpoch.Add(Garbage.Settle());
    }

    [Fact]
    public void The_live_tensor_count_stays_flat_across_epochs()
    {
        manual_seed(0);
        var train = CifarSample.LoadTrain().Subset(Enumerable.Range(0, 96).ToList());
        var val = CifarSample.LoadTest().Subset(Enumerable.Range(0, 64).ToList());
        var normalization = Normalization.Measure(train, NormalizationMode.Channel);
        var config = new RunConfig { Train = new TrainConfig { Epochs = 5, BatchSize = 32 } };
        using var model = ModelRegistry.Create("resnet20");
        using var sgd = new Sgd(ParameterGroup.Split(model, 1e-4, false), 0.1, 0.9, 0, false);
        var trainLoader = new BatchLoader(new CifarSource(train, new CifarAugmentation(Train: true), normalization), 32, shuffle: true, seed: 0);
        var valLoader = new BatchLoader(new CifarSource(val, new CifarAugmentation(Train: false), normalization), 32, shuffle: false, seed: 0);
        var session = new TrainingSession
        {
            Config = config, Model = model, Optimizer = sgd, Schedule = new ConstantSchedule(0.1), Device = CPU,
            Normalization = normalization, Classes = train.Classes, TrainSamples = train.Count, ValidationSamples = val.Count,
            BatchesPerEpoch = trainLoader.BatchesPerEpoch,
        };
        var counter = new LiveTensorCounter();
        Garbage.Settle();
        new TrainingEngine(session, trainLoader, valLoader, [counter]).Run();

        Assert.Equal(5, counter.AfterEpoch.Count);
        // After the first epoch has created the momentum buffers, nothing accumulates. The count is
        // process-wide, but settled before each reading (and before the run) it holds no tensor an
        // earlier test left to its finalizer, so it is exact.
        Assert.All(counter.AfterEpoch.Skip(1), count => Assert.Equal(counter.AfterEpoch[1], count));
        Assert.Equal(15, session.Step);
        Assert.Equal(5, session.Epoch);
    }

    [Fact]
    public void Iterations_stop_training_mid_epoch_and_win_over_epochs()
    {
        manual_seed(0);
        var train = CifarSample.LoadTrain().Subset(Enumerable.Range(0, 64).ToList());
        var normalization = Normalization.Measure(train, NormalizationMode.Channel);
        var config = new RunConfig { Train = new TrainConfig { Epochs = 100, Iterations = 5, BatchSize = 16 } };
        using var model = ModelRegistry.Create("resnet20");
        using var sgd = new Sgd(ParameterGroup.Split(model, 1e-4, false), 0.1, 0.9, 0, false);
        var loader = new BatchLoader(new CifarSource(train, new CifarAugmentation(Train: true), normalization), 16, shuffle: true, seed: 0);
        var session = new TrainingSession
        {
            Config = config, Model = model, Optimizer = sgd, Schedule = new ConstantSchedule(0.1), Device = CPU,
            Normalization = normalization, Classes = train.Classes, TrainSamples = 64, ValidationSamples = 64, BatchesPerEpoch = 4,
        };
        new TrainingEngine(session, loader, loader, []).Run();
        Assert.Equal(2, session.TotalEpochs);
        Assert.Equal(2, session.Epoch);
        Assert.Equal(5, session.Step);
    }
}
