using Trainer.Models;
using Trainer.Recipes.Optim;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

public class OptimizerTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Sgd_matches_torch_sgd_with_momentum_weight_decay_and_nesterov(bool nesterov)
    {
        manual_seed(3);
        using var ours = ModelRegistry.Create("resnet20");
        manual_seed(3);
        using var reference = ModelRegistry.Create("resnet20");
        using var sgd = new Sgd(Sgd.Groups(ours, 1e-4, exemptBnAndBias: false), 0.1, 0.9, 0, nesterov);
        var torchSgd = optim.SGD(reference.parameters(), 0.1, momentum: 0.9, weight_decay: 1e-4, nesterov: nesterov);
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
        var groups = Sgd.Groups(model, 1e-4, exemptBnAndBias: true);
        Assert.Equal(2, groups.Count);
        Assert.All(groups[0].Parameters, p => Assert.True(p.Parameter.dim() > 1));
        Assert.Contains(groups[1].Parameters, p => p.Name == "bn1.weight");
        Assert.Contains(groups[1].Parameters, p => p.Name == "fc.bias");
        Assert.Equal(0, groups[1].WeightDecay);
        Assert.Equal(model.parameters().Count(), groups.Sum(g => g.Parameters.Count));
    }
}
