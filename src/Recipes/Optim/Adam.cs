using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Optim;

/// <summary>
/// Adam (Kingma and Ba) as torch.optim.Adam computes it, or AdamW (Loshchilov and Hutter) with
/// <c>decoupled</c>: weight decay then shrinks the weights directly (p *= 1 - lr * wd) instead of
/// adding wd * p to the gradient.
/// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
/// </summary>
internal sealed class Adam(IReadOnlyList<ParameterGroup> groups, double lr, double beta1, double beta2, double eps, bool decoupled) : Optimizer(groups, lr)
{
    protected override void Update(string name, Parameter p, Tensor grad, double lr, double weightDecay)
    {
        double correction1 = 1 - Math.Pow(beta1, Steps), correction2 = 1 - Math.Pow(beta2, Steps);
        using Scalar shrink = (1 - lr * weightDecay).ToScalar(), decay = weightDecay.ToScalar(), b1 = beta1.ToScalar(), rest1 = (1 - beta1).ToScalar(),
            b2 = beta2.ToScalar(), rest2 = (1 - beta2).ToScalar(), root2 = Math.Sqrt(correction2).ToScalar(), epsilon = eps.ToScalar(), step = (-lr / correction1).ToScalar();
        if (weightDecay != 0)
        {
            if (decoupled) p.mul_(shrink);
            else grad = grad.add(p, alpha: decay);
        }
        var m = Slot(name, "exp_avg", () => zeros_like(p));
        var v = Slot(name, "exp_avg_sq", () => zeros_like(p));
        m.mul_(b1).add_(grad, alpha: rest1);
        v.mul_(b2).addcmul_(grad, grad, value: rest2);
        var denominator = v.sqrt().div_(root2).add_(epsilon);
        p.addcdiv_(m, denominator, value: step);
    }
}
