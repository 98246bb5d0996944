using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Optim;

/// <summary>A named parameter and the weight decay that applies to it.</summary>
public sealed record ParameterGroup(IReadOnlyList<(string Name, Parameter Parameter)> Parameters, double WeightDecay);

/// <summary>
/// Stochastic gradient descent with momentum, as torch.optim.SGD computes it:
/// g += wd * p; buf = momentum * buf + (1 - dampening) * g (buf = g at the first step);
/// g = nesterov ? g + momentum * buf : buf; p -= lr * g.
/// Written here (rather than TorchSharp's SGD) so its momentum buffers are plain named tensors
/// that checkpoints save and restore exactly, on any device.
/// </summary>
public sealed class Sgd : IDisposable
{
    readonly IReadOnlyList<ParameterGroup> _groups;
    readonly double _momentum, _dampening;
    readonly bool _nesterov;
    readonly Dictionary<string, Tensor> _momentumBuffers = new();

    public Sgd(IReadOnlyList<ParameterGroup> groups, double lr, double momentum, double dampening, bool nesterov)
    {
        _groups = groups;
        LearningRate = lr;
        _momentum = momentum;
        _dampening = dampening;
        _nesterov = nesterov;
    }

    public double LearningRate { get; set; }

    /// <summary>
    /// Splits a model's parameters into a decayed group and, when <paramref name="exemptBnAndBias"/>,
    /// an undecayed group of the one-dimensional ones (BatchNorm scales and shifts, biases).
    /// </summary>
    public static IReadOnlyList<ParameterGroup> Groups(nn.Module model, double weightDecay, bool exemptBnAndBias)
    {
        var all = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        if (!exemptBnAndBias) return [new ParameterGroup(all, weightDecay)];
        return
        [
            new ParameterGroup(all.Where(p => p.parameter.dim() > 1).ToList(), weightDecay),
            new ParameterGroup(all.Where(p => p.parameter.dim() <= 1).ToList(), 0),
        ];
    }

    public void ZeroGrad()
    {
        foreach (var group in _groups)
            foreach (var (_, p) in group.Parameters)
                p.grad?.zero_();
    }

    public void Step()
    {
        using var _ = no_grad();
        foreach (var group in _groups)
        {
            foreach (var (name, p) in group.Parameters)
            {
                using var scope = NewDisposeScope();
                var grad = p.grad;
                if (grad is null) continue;
                if (group.WeightDecay != 0) grad = grad.add(p, alpha: group.WeightDecay);
                if (_momentum != 0)
                {
                    if (_momentumBuffers.TryGetValue(name, out var buf))
                    {
                        buf.mul_(_momentum).add_(grad, alpha: 1 - _dampening);
                    }
                    else
                    {
                        // The buffer outlives this step's scope: it belongs to the optimizer.
                        buf = grad.detach().clone().DetachFromDisposeScope();
                        _momentumBuffers[name] = buf;
                    }
                    grad = _nesterov ? grad.add(buf, alpha: _momentum) : buf;
                }
                p.add_(grad, alpha: -LearningRate);
            }
        }
    }

    /// <summary>The momentum buffers by parameter name (what a checkpoint keeps).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict() => _momentumBuffers;

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> buffers)
    {
        var byName = _groups.SelectMany(g => g.Parameters).ToDictionary(p => p.Name, p => p.Parameter);
        foreach (var old in _momentumBuffers.Values) old.Dispose();
        _momentumBuffers.Clear();
        foreach (var (name, tensor) in buffers)
        {
            if (!byName.TryGetValue(name, out var p))
                throw new InvalidDataException($"optimizer state names parameter '{name}', which the model does not have");
            var buf = tensor.to(p.device).clone();
            buf.DetachFromDisposeScope();
            _momentumBuffers[name] = buf;
        }
    }

    public void Dispose()
    {
        foreach (var buf in _momentumBuffers.Values) buf.Dispose();
        _momentumBuffers.Clear();
    }
}
