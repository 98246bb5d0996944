using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Optim;

/// <summary>
/// Adam (Kingma and Ba) as torch.optim.Adam computes it, or AdamW (Loshchilov and Hutter) with
/// <c>decoupled</c>: weight decay then shrinks the weights directly (p *= 1 - lr * wd) instead of
/// adding wd * p to the gradient.
/// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
/// </summary>
public sealed class Adam(IReadOnlyList<ParameterGroup> groups, double lr, double beta1, double beta2, double eps, bool decoupled) : Optimizer(groups, lr)
{
    protected override void Update(string name, Parameter p, Tensor grad, double lr, double weightDecay)
    {
        if (weightDecay != 0)
        {
            if (decoupled) p.mul_(1 - lr * weightDecay);
            else grad = grad.add(p, alpha: weightDecay);
        }
        var m = Slot(name, "exp_avg", () => zeros_like(p));
        var v = Slot(name, "exp_avg_sq", () => zeros_like(p));
        m.mul_(beta1).add_(grad, alpha: 1 - beta1);
        v.mul_(beta2).addcmul_(grad, grad, value: 1 - beta2);
        double correction1 = 1 - Math.Pow(beta1, Steps), correction2 = 1 - Math.Pow(beta2, Steps);
        var denominator = v.sqrt().div_(Math.Sqrt(correction2)).add_(eps);
        p.addcdiv_(m, denominator, value: -lr / correction1);
    }
}
