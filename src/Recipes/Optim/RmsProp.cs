using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Optim;

/// <summary>
/// RMSprop. The default form is torch.optim.RMSprop's:
/// g += wd * p; s = alpha * s + (1 - alpha) * g^2 (s starts at 0);
/// buf = momentum * buf + g / (sqrt(s) + eps); p -= lr * buf.
/// With <c>tfStyle</c> it is TensorFlow's RMSPropOptimizer, which the Inception-v3, MobileNet and
/// EfficientNet papers trained with: s starts at 1, eps sits inside the square root and the rate
/// inside the momentum buffer: buf = momentum * buf + lr * g / sqrt(s + eps); p -= buf. The papers'
/// epsilon (1.0 for Inception-v3 and the MobileNets, 1e-3 for EfficientNet) is a TF-form epsilon.
/// </summary>
internal sealed class RmsProp(IReadOnlyList<ParameterGroup> groups, double lr, double alpha, double eps, double momentum, bool tfStyle) : Optimizer(groups, lr)
{
    protected override void Update(string name, Parameter p, Tensor grad, double lr, double weightDecay)
    {
        using Scalar decay = weightDecay.ToScalar(), a = alpha.ToScalar(), rest = (1 - alpha).ToScalar(), epsilon = eps.ToScalar(),
            beta = momentum.ToScalar(), rate = lr.ToScalar(), step = (-lr).ToScalar();
        if (weightDecay != 0) grad = grad.add(p, alpha: decay);
        var square = Slot(name, "square_avg", () => tfStyle ? ones_like(p) : zeros_like(p));
        square.mul_(a).addcmul_(grad, grad, value: rest);
        var denominator = tfStyle ? square.add(epsilon).sqrt_() : square.sqrt().add_(epsilon);
        if (tfStyle)
        {
            var buf = Slot(name, "momentum_buffer", () => zeros_like(p));
            buf.mul_(beta).addcdiv_(grad, denominator, value: rate);
            p.sub_(buf);
        }
        else if (momentum > 0)
        {
            var buf = Slot(name, "momentum_buffer", () => zeros_like(p));
            buf.mul_(beta).addcdiv_(grad, denominator);
            p.add_(buf, alpha: step);
        }
        else p.addcdiv_(grad, denominator, value: step);
    }
}
