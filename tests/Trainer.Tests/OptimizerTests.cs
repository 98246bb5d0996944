using System.Text.Json;
using TorchSharp.Modules;
using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Optim;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

public class OptimizerTests
{
    /// <summary>One optimizer setting, run here and by torch.optim on the same weights, gradients and rates.</summary>
    public sealed record Case(string Name, OptimizerConfig Config, double Clip = 0);

    static readonly Case[] Cases =
    [
        new("sgd_momentum", new OptimizerConfig { Name = "sgd", Momentum = 0.9, WeightDecay = 0.01 }),
        new("sgd_nesterov", new OptimizerConfig { Name = "sgd", Momentum = 0.9, WeightDecay = 0.01, Nesterov = true }),
        new("sgd_dampening", new OptimizerConfig { Name = "sgd", Momentum = 0.9, Dampening = 0.5, WeightDecay = 0.01 }),
        new("sgd_clipped", new OptimizerConfig { Name = "sgd", Momentum = 0.9, WeightDecay = 0.01 }, Clip: 0.5),
        new("rmsprop_momentum", new OptimizerConfig { Name = "rmsprop", Alpha = 0.9, Momentum = 0.9, Eps = 0.1, WeightDecay = 0.01 }),
        new("rmsprop_plain", new OptimizerConfig { Name = "rmsprop", Alpha = 0.9, Momentum = 0, Eps = 1e-3, WeightDecay = 0.01 }),
        new("adam", new OptimizerConfig { Name = "adam", Eps = 1e-8, WeightDecay = 0.01 }),
        new("adamw", new OptimizerConfig { Name = "adamw", Eps = 1e-8, WeightDecay = 0.01 }),
    ];

    static readonly double[] Rates = [0.1, 0.1, 0.05, 0.05, 0.01, 0.01, 0.01];

    static float[] Normal(Random random, int n) =>
        Enumerable.Range(0, n).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()))).ToArray();

    /// <summary>Runs <paramref name="c"/> over the fixed problem; returns the final weight and bias.</summary>
    static (float[] Weight, float[] Bias) RunOurs(Case c, float[] weight0, float[] bias0, float[][] weightGrads, float[][] biasGrads)
    {
        var weight = new Parameter(tensor(weight0).reshape(3, 4), requires_grad: true);
        var bias = new Parameter(tensor(bias0), requires_grad: true);
        var groups = new[]
        {
            new ParameterGroup([("weight", weight)], c.Config.WeightDecay),
            new ParameterGroup([("bias", bias)], 0),
        };
        using var optimizer = OptimizerFactory.Create(c.Config with { ClipGradNorm = c.Clip }, groups, Rates[0]);
        for (int step = 0; step < Rates.Length; step++)
        {
            optimizer.LearningRate = Rates[step];
            weight.grad = tensor(weightGrads[step]).reshape(3, 4);
            bias.grad = tensor(biasGrads[step]);
            optimizer.Step();
        }
        return (weight.detach().flatten().data<float>().ToArray(), bias.detach().data<float>().ToArray());
    }

    [Fact]
    public void Every_optimizer_matches_torch_optim_to_1e_6_after_several_steps()
    {
        var random = new Random(11);
        var weight0 = Normal(random, 12);
        var bias0 = Normal(random, 4);
        var weightGrads = Rates.Select(_ => Normal(random, 12)).ToArray();
        var biasGrads = Rates.Select(_ => Normal(random, 4)).ToArray();
        using var dir = new TempDir();
        var spec = new
        {
            weight = weight0, bias = bias0, weight_grads = weightGrads, bias_grads = biasGrads, lrs = Rates,
            cases = Cases.Select(c => new
            {
                name = c.Name, optimizer = c.Config.Name, momentum = c.Config.Momentum, dampening = c.Config.Dampening, nesterov = c.Config.Nesterov,
                weight_decay = c.Config.WeightDecay, alpha = c.Config.Alpha, eps = c.Config.Eps, betas = c.Config.Betas, clip = c.Clip,
            }),
        };
        File.WriteAllText(dir["in.json"], JsonSerializer.Serialize(spec));
        Python.Run("optimizer_reference.py", dir["in.json"], dir["out.json"]);
        var reference = JsonDocument.Parse(File.ReadAllText(dir["out.json"])).RootElement;

        foreach (var c in Cases)
        {
            var (weight, bias) = RunOurs(c, weight0, bias0, weightGrads, biasGrads);
            var expectedWeight = reference.GetProperty(c.Name).GetProperty("weight").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            var expectedBias = reference.GetProperty(c.Name).GetProperty("bias").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            for (int i = 0; i < weight.Length; i++)
                Assert.True(Math.Abs(weight[i] - expectedWeight[i]) <= 1e-6, $"{c.Name}: weight[{i}] {weight[i]} vs torch {expectedWeight[i]}");
            for (int i = 0; i < bias.Length; i++)
                Assert.True(Math.Abs(bias[i] - expectedBias[i]) <= 1e-6, $"{c.Name}: bias[{i}] {bias[i]} vs torch {expectedBias[i]}");
            // The parameters moved: the comparison is not between two untouched copies.
            Assert.True(Math.Abs(weight[0] - weight0[0]) > 1e-3, $"{c.Name} did not move the weights");
        }
    }

    [Fact]
    public void Tensorflow_style_rmsprop_follows_its_update_by_hand()
    {
        // s starts at 1; s = 0.9 s + 0.1 g^2; buf = 0.9 buf + lr g / sqrt(s + eps); p -= buf.
        var p = new Parameter(tensor(new[] { 1.0f }), requires_grad: true);
        using var optimizer = new RmsProp([new ParameterGroup([("p", p)], 0)], lr: 0.1, alpha: 0.9, eps: 1.0, momentum: 0.9, tfStyle: true);
        double s = 1, buf = 0, value = 1;
        foreach (var (g, lr) in new[] { (2.0, 0.1), (-1.0, 0.05) })
        {
            optimizer.LearningRate = lr;
            p.grad = tensor(new[] { (float)g });
            optimizer.Step();
            s = 0.9 * s + 0.1 * g * g;
            buf = 0.9 * buf + lr * g / Math.Sqrt(s + 1.0);
            value -= buf;
            Assert.Equal(value, p.item<float>(), 6);
        }
    }

    [Fact]
    public void Optimizer_state_saved_mid_run_continues_exactly()
    {
        var random = new Random(5);
        var grads = Enumerable.Range(0, 6).Select(_ => Normal(random, 4)).ToArray();
        Tensor Run(bool reload)
        {
            var p = new Parameter(ones(4), requires_grad: true);
            var config = new OptimizerConfig { Name = "adam", WeightDecay = 0.01 };
            var optimizer = OptimizerFactory.Create(config, [new ParameterGroup([("p", p)], 0.01)], 0.01);
            for (int step = 0; step < grads.Length; step++)
            {
                if (reload && step == 3)
                {
                    var state = optimizer.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
                    optimizer.Dispose();
                    optimizer = OptimizerFactory.Create(config, [new ParameterGroup([("p", p)], 0.01)], 0.01);
                    optimizer.LoadStateDict(state);
                    Assert.Equal(3, optimizer.Steps);
                }
                p.grad = tensor(grads[step]);
                optimizer.Step();
            }
            optimizer.Dispose();
            return p.detach().clone();
        }
        using var straight = Run(reload: false);
        using var resumed = Run(reload: true);
        Assert.True(straight.eq(resumed).all().item<bool>(), "Adam resumed from its state dict differs from an uninterrupted run");
    }

    [Fact]
    public void Sgd_on_a_model_matches_torchsharp_sgd()
    {
        manual_seed(3);
        using var ours = ModelRegistry.Create("resnet20");
        manual_seed(3);
        using var reference = ModelRegistry.Create("resnet20");
        using var sgd = new Sgd(ParameterGroup.Split(ours, 1e-4, exemptBnAndBias: false), 0.1, 0.9, 0, nesterov: true);
        var torchSgd = optim.SGD(reference.parameters(), 0.1, momentum: 0.9, weight_decay: 1e-4, nesterov: true);
        manual_seed(4);
        using var x = randn(8, 3, 32, 32);
        using var y = randint(0, 10, 8);
        for (int step = 0; step < 3; step++)
        {
            sgd.ZeroGrad();
            nn.functional.cross_entropy(ours.forward(x), y).backward();
            sgd.Step();
            torchSgd.zero_grad();
            nn.functional.cross_entropy(reference.forward(x), y).backward();
            torchSgd.step();
        }
        var expected = reference.state_dict();
        foreach (var (name, tensor) in ours.state_dict())
            Assert.True(tensor.allclose(expected[name], rtol: 1e-5, atol: 1e-6), $"{name} differs from torch.optim.SGD");
    }

    [Fact]
    public void Batchnorm_and_bias_parameters_can_be_exempt_from_weight_decay()
    {
        using var model = ModelRegistry.Create("resnet20");
        var groups = ParameterGroup.Split(model, 1e-4, exemptBnAndBias: true);
        Assert.Equal(2, groups.Count);
        Assert.All(groups[0].Parameters, p => Assert.True(p.Parameter.dim() > 1));
        Assert.Contains(groups[1].Parameters, p => p.Name == "bn1.weight");
        Assert.Contains(groups[1].Parameters, p => p.Name == "fc.bias");
        Assert.Equal(0, groups[1].WeightDecay);
        Assert.Equal(model.parameters().Count(), groups.Sum(g => g.Parameters.Count));
    }

    [Fact]
    public void Frozen_parameters_are_left_out_of_the_groups()
    {
        using var model = ModelRegistry.Create("resnet20");
        foreach (var (name, p) in model.named_parameters()) if (!name.StartsWith("fc.")) p.requires_grad = false;
        var names = ParameterGroup.Split(model, 1e-4, exemptBnAndBias: false).SelectMany(g => g.Parameters).Select(p => p.Name).ToList();
        Assert.Equal(["fc.weight", "fc.bias"], names);
    }
}
