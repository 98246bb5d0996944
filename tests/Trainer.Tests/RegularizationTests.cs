using TorchSharp.Modules;
using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Regularization;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

public class RegularizationTests
{
    // Two samples, three classes; the log-softmax of each row worked out by hand below.
    static Tensor Logits() => tensor(new float[] { 2, 1, 0, 0, 0, 0 }).reshape(2, 3);

    static double LogSoftmax(double[] row, int k) => row[k] - Math.Log(row.Sum(Math.Exp));

    [Fact]
    public void Label_smoothing_loss_matches_the_hand_computed_value()
    {
        using var logits = Logits();
        using var labels = tensor(new long[] { 0, 2 });
        double e = 0.1;
        double[][] rows = [[2, 1, 0], [0, 0, 0]];
        // Per sample: -sum_k q_k log p_k with q = (1 - e) one-hot + e / 3.
        double expected = new[] { (rows[0], 0), (rows[1], 2) }
            .Select(s => -Enumerable.Range(0, 3).Sum(k => ((k == s.Item2 ? 1 - e : 0) + e / 3) * LogSoftmax(s.Item1, k)))
            .Average();
        using var loss = new Criterion(e).Loss(logits, new Targets(labels));
        Assert.Equal(expected, loss.item<float>(), 5);
        // And without smoothing it is plain cross-entropy: -(log p_0 of row 0 + log p_2 of row 1) / 2.
        using var plain = Criterion.Plain.Loss(logits, new Targets(labels));
        Assert.Equal(-(LogSoftmax(rows[0], 0) + LogSoftmax(rows[1], 2)) / 2, plain.item<float>(), 5);
    }

    [Fact]
    public void Mixed_targets_weigh_the_two_cross_entropies_by_lambda()
    {
        using var logits = Logits();
        using var a = tensor(new long[] { 0, 2 });
        using var b = tensor(new long[] { 1, 0 });
        double[][] rows = [[2, 1, 0], [0, 0, 0]];
        double ceA = -(LogSoftmax(rows[0], 0) + LogSoftmax(rows[1], 2)) / 2;
        double ceB = -(LogSoftmax(rows[0], 1) + LogSoftmax(rows[1], 0)) / 2;
        using var loss = Criterion.Plain.Loss(logits, new Targets(a, b, 0.3));
        Assert.Equal(0.3 * ceA + 0.7 * ceB, loss.item<float>(), 5);
        Assert.Same(b, new Targets(a, b, 0.3).Dominant);
        Assert.Same(a, new Targets(a, b, 0.6).Dominant);
    }

    [Fact]
    public void Mixup_blends_each_image_with_the_reversed_batch()
    {
        var mixing = new BatchMixing(new RegularizationConfig { MixupAlpha = 0.4 }, seed: 7);
        using var original = arange(4 * 3 * 2 * 2, dtype: ScalarType.Float32).reshape(4, 3, 2, 2);
        using var x = original.clone();
        using var y = tensor(new long[] { 0, 1, 2, 3 });
        var (mixed, targets) = mixing.Apply(x, y, step: 5);
        double lambda = targets.Lambda;
        Assert.InRange(lambda, 0, 1);
        Assert.NotEqual(1.0, lambda);
        using var expected = original * lambda + original.flip(0) * (1 - lambda);
        Assert.True(mixed.allclose(expected, atol: 1e-5), "mixup is not lambda x + (1 - lambda) x reversed");
        Assert.Equal([3L, 2, 1, 0], targets.B!.data<long>().ToArray());
        // The same step draws the same lambda (a resumed run mixes as the uninterrupted one did).
        var (_, again) = mixing.Apply(original.clone(), y, step: 5);
        Assert.Equal(lambda, again.Lambda);
    }

    [Fact]
    public void Cutmix_pastes_a_box_and_sets_lambda_to_the_area_kept()
    {
        var mixing = new BatchMixing(new RegularizationConfig { CutmixAlpha = 1.0 }, seed: 3);
        using var x = zeros(2, 1, 10, 10);
        x[1].fill_(1);
        using var y = tensor(new long[] { 0, 1 });
        Targets? targets = null;
        for (long step = 0; step < 50 && (targets is null || targets.Lambda == 1); step++)
        {
            x[0].fill_(0); x[1].fill_(1);
            (_, targets) = mixing.Apply(x, y, step);
        }
        Assert.NotNull(targets);
        Assert.True(targets!.Lambda < 1, "no step pasted a box");
        // Image 0 received ones in the box from image 1: the share of ones is 1 - lambda.
        double pasted = x[0].mean().item<float>();
        Assert.Equal(1 - targets.Lambda, pasted, 6);
        // Image 1 received zeros in the same box from image 0: lambda of it is left.
        Assert.Equal(targets.Lambda, x[1].mean().item<float>(), 6);

        var (top, bottom, left, right) = BatchMixing.Box(new Random(1), 32, 32, lambda: 0.75);
        Assert.True(bottom - top <= 16 && right - left <= 16 && top >= 0 && left >= 0 && bottom <= 32 && right <= 32);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.2)]
    public void Beta_draws_have_the_beta_distributions_mean_and_variance(double alpha)
    {
        var random = new Random(42);
        var draws = Enumerable.Range(0, 20000).Select(_ => BatchMixing.Beta(random, alpha)).ToArray();
        double mean = draws.Average(), variance = draws.Select(d => (d - mean) * (d - mean)).Average();
        // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)): 1/12 for a = 1, 0.1786 for a = 0.2.
        Assert.InRange(mean, 0.49, 0.51);
        Assert.InRange(variance, 1 / (4 * (2 * alpha + 1)) * 0.95, 1 / (4 * (2 * alpha + 1)) * 1.05);
        Assert.All(draws, d => Assert.InRange(d, 0, 1));
    }

    [Fact]
    public void The_weight_average_follows_its_update_rule_and_copies_buffers()
    {
        manual_seed(1);
        using var live = ModelRegistry.Create("resnet20");
        using var copy = ModelRegistry.Create("resnet20");
        using var average = new WeightAverage(live, copy, decay: 0.5);
        var w = live.named_parameters().First(p => p.name == "fc.bias").parameter;
        var a = copy.named_parameters().First(p => p.name == "fc.bias").parameter;
        double w0 = w[0].item<float>();
        Assert.Equal(w0, a[0].item<float>());
        // Update 1: d = min(0.5, 2/11) = 0.1818..; update 2: d = min(0.5, 3/12) = 0.25; update 3: min(0.5, 4/13) = 0.3077.
        double expected = w0;
        double[] values = [1.0, -2.0, 0.5];
        double[] decays = [2.0 / 11, 3.0 / 12, 4.0 / 13];
        for (int i = 0; i < values.Length; i++)
        {
            using (no_grad()) w[0] = values[i];
            average.Update();
            expected = decays[i] * expected + (1 - decays[i]) * values[i];
            Assert.Equal(expected, a[0].item<float>(), 5);
        }
        // Later updates use the configured decay once (1 + n) / (10 + n) exceeds it.
        average.Updates = 100;
        Assert.Equal(0.5, average.NextDecay);
        var liveMean = live.named_buffers().First(b => b.name == "bn1.running_mean").buffer;
        using (no_grad()) liveMean.fill_(3);
        average.Update();
        Assert.Equal(3f, copy.named_buffers().First(b => b.name == "bn1.running_mean").buffer[0].item<float>());
        Assert.False(a.requires_grad);
    }

    [Fact]
    public void Dropout_and_stochastic_depth_are_model_options()
    {
        manual_seed(0);   // the same weights and inputs whichever tests ran before
        using var x = randn(2, 3, 32, 32);
        ClassifierModel Build(string name, double? dropout, double? depth)
        {
            var m = ModelRegistry.Create(name, new ModelOptions(Dropout: dropout, StochasticDepth: depth));
            m.train();
            return m;
        }
        bool Deterministic(ClassifierModel m)
        {
            manual_seed(1);
            using var a = m.forward(x);
            manual_seed(2);
            using var b = m.forward(x);
            return a.allclose(b, rtol: 1e-3, atol: 1e-3);   // thread scheduling may reorder sums; dropped units change far more
        }
        // Without dropout training-mode forwards agree (BatchNorm uses batch statistics either way); with it they differ.
        using (var m = Build("densenet_bc_100_12", 0, null)) Assert.True(Deterministic(m));
        using (var m = Build("densenet_bc_100_12", 0.5, null)) Assert.False(Deterministic(m));
        using (var m = Build("resnet20", null, null)) Assert.True(Deterministic(m));
        using (var m = Build("resnet20", null, 0.5)) Assert.False(Deterministic(m));
        // The options change no parameter: weights stay interchangeable.
        using var plain = ModelRegistry.Create("alexnet");
        using var dropped = ModelRegistry.Create("alexnet", new ModelOptions(Dropout: 0.1));
        Assert.Equal(plain.state_dict().Keys, dropped.state_dict().Keys);
        var rates = dropped.modules().OfType<Dropout>().Select(d => d.p).ToList();
        Assert.Equal([0.1, 0.1], rates);
    }

    [Fact]
    public void The_training_step_adds_googlenets_auxiliary_losses_with_weight_0_3()
    {
        manual_seed(0);
        using var model = ModelRegistry.Create("googlenet", new ModelOptions(NumClasses: 5, Aux: true));
        model.train();
        using var optimizer = new Trainer.Recipes.Optim.Sgd(Trainer.Recipes.Optim.ParameterGroup.Split(model, 0, false), 1e-3, 0, 0, false);
        using var scope = NewDisposeScope();
        var x = randn(2, 3, 96, 96);
        var y = tensor(new long[] { 1, 3 });
        var (logits, loss) = Trainer.Recipes.Engine.TrainingStep.Run(model, optimizer, x, new Targets(y), new Criterion(0.1), auxWeight: 0.3);
        Assert.Equal(2, model.AuxiliaryLogits.Count);
        var criterion = new Criterion(0.1);
        double expected = criterion.Loss(logits, new Targets(y)).item<float>()
            + 0.3 * model.AuxiliaryLogits.Sum(aux => criterion.Loss(aux, new Targets(y)).item<float>());
        Assert.Equal(expected, loss.item<float>(), 4);
        Assert.True(loss.item<float>() > criterion.Loss(logits, new Targets(y)).item<float>() + 0.5, "the auxiliary losses are missing");
    }
}
