using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Optim;

/// <summary>
/// Stochastic gradient descent with momentum, as torch.optim.SGD computes it:
/// g += wd * p; buf = momentum * buf + (1 - dampening) * g (buf = g at the first step);
/// g = nesterov ? g + momentum * buf : buf; p -= lr * g.
/// The momentum buffer of a parameter is saved under the parameter's own name.
/// </summary>
public sealed class Sgd(IReadOnlyList<ParameterGroup> groups, double lr, double momentum, double dampening, bool nesterov) : Optimizer(groups, lr)
{
    protected override void Update(string name, Parameter p, Tensor grad, double lr, double weightDecay)
    {
        if (weightDecay != 0) grad = grad.add(p, alpha: weightDecay);
        if (momentum != 0)
        {
            if (TryGetSlot(name, "", out var buf)) buf.mul_(momentum).add_(grad, alpha: 1 - dampening);
            else buf = Slot(name, "", () => grad.detach().clone());
            grad = nesterov ? grad.add(buf, alpha: momentum) : buf;
        }
        p.add_(grad, alpha: -lr);
    }
}
