using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Optim;

/// <summary>
/// Stochastic gradient descent with momentum, as torch.optim.SGD computes it:
/// g += wd * p; buf = momentum * buf + (1 - dampening) * g (buf = g at the first step);
/// g = nesterov ? g + momentum * buf : buf; p -= lr * g.
/// The momentum buffer of a parameter is saved under the parameter's own name.
/// </summary>
internal sealed class Sgd(IReadOnlyList<ParameterGroup> groups, double lr, double momentum, double dampening, bool nesterov) : Optimizer(groups, lr)
{
    protected override void Update(string name, Parameter p, Tensor grad, double lr, double weightDecay)
    {
        // Scalars are held for the whole update (see Optimizer: no temporary scalar may be collected mid-call).
        using Scalar decay = weightDecay.ToScalar(), beta = momentum.ToScalar(), keep = (1 - dampening).ToScalar(), step = (-lr).ToScalar();
        if (weightDecay != 0) grad = grad.add(p, alpha: decay);
        if (momentum != 0)
        {
            if (TryGetSlot(name, "", out var buf)) buf.mul_(beta).add_(grad, alpha: keep);
            else buf = Slot(name, "", () => grad.detach().clone());
            grad = nesterov ? grad.add(buf, alpha: beta) : buf;
        }
        p.add_(grad, alpha: step);
    }
}
