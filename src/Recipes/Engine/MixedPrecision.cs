using TorchSharp;
using TorchSharp.Modules;
using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Optim;
using Trainer.Recipes.Regularization;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>
/// Mixed-precision training without autocast (TorchSharp has none), in the manner of
/// Micikevicius et al. (2018): a twin of the model computes in bfloat16 or float16 while the
/// model itself keeps the fp32 master weights the optimizer updates. BatchNorm layers of the twin
/// stay fp32 (scale, shift and running statistics; libtorch normalises low-precision inputs with
/// fp32 parameters), and the loss is computed in fp32 from upcast logits. Each step copies the
/// master weights into the twin (rounding them), runs forward and backward there, and hands the
/// upcast gradients to the master; BatchNorm statistics flow back. float16 adds dynamic loss
/// scaling: the loss is multiplied by a scale before backward and gradients divided by it; a
/// step whose gradients overflow is skipped and the scale halved; after a growth interval of good
/// steps (2,000 by default, as PyTorch's GradScaler) it doubles.
/// </summary>
internal sealed class MixedPrecision : IDisposable
{
    public const int DefaultGrowthInterval = 2000;
    readonly nn.Module<Tensor, Tensor> _master, _twin;
    readonly ScalarType _dtype;
    readonly (Parameter Master, Parameter Twin)[] _parameters;
    readonly (Tensor Master, Tensor Twin)[] _buffers;
    readonly bool _dynamicScale;
    readonly int _growthInterval;
    int _goodSteps;

    /// <summary>Good steps since the scale last changed (part of the resumable state).</summary>
    public int GoodSteps { get => _goodSteps; set => _goodSteps = value; }

    public MixedPrecision(nn.Module<Tensor, Tensor> master, nn.Module<Tensor, Tensor> twin, Precision precision, double initialScale = 65536, int growthInterval = DefaultGrowthInterval)
    {
        if (precision == Precision.Fp32) throw new ArgumentException("fp32 needs no mixed precision");
        if (growthInterval < 1) throw new ArgumentOutOfRangeException(nameof(growthInterval), "the growth interval must be at least 1 step");
        _master = master;
        _twin = twin;
        _dtype = precision == Precision.Bf16 ? ScalarType.BFloat16 : ScalarType.Float16;
        _twin.to(_dtype);
        foreach (var (_, module) in _twin.named_modules())
            if (module is BatchNorm2d bn) bn.to(ScalarType.Float32);
        var twinParameters = _twin.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        _parameters = master.named_parameters().Select(p => (p.parameter, twinParameters[p.name])).ToArray();
        var twinBuffers = _twin.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        _buffers = master.named_buffers().Select(b => (b.buffer, twinBuffers[b.name])).ToArray();
        _dynamicScale = precision == Precision.Fp16;
        LossScale = _dynamicScale ? initialScale : 1;
        _growthInterval = growthInterval;
    }

    /// <summary>The low-precision twin that runs each training step's forward and backward.</summary>
    public nn.Module<Tensor, Tensor> Twin => _twin;

    /// <summary>The current loss scale (1 for bf16); saved in checkpoints so a resumed fp16 run continues exactly.</summary>
    public double LossScale { get; set; }
    public long SkippedSteps { get; private set; }
    /// <summary>fp16: overflowing gradients are expected now and then (the step is skipped and the scale halved), so they are no sign of divergence.</summary>
    public bool DynamicScale => _dynamicScale;
    /// <summary>The type the twin computes in, read from its weights (BatchNorm's stay float32): bfloat16 or float16; float32 if none was converted.</summary>
    public ScalarType ComputeType => _parameters.Select(p => p.Twin.dtype).FirstOrDefault(t => t != ScalarType.Float32, ScalarType.Float32);

    /// <summary>One step: forward and backward in low precision, the optimizer on the fp32 master weights.</summary>
    public (Tensor Logits, Tensor Loss) Step(Optimizer optimizer, Tensor x, Targets targets, Criterion criterion, double auxWeight, Action? gradientsReady = null)
    {
        using (no_grad())
        {
            foreach (var (master, twin) in _parameters) twin.copy_(master);
            foreach (var (master, twin) in _buffers) twin.copy_(master);
        }
        if (_master.training) _twin.train(); else _twin.eval();
        var logits = _twin.forward(x.to(_dtype)).to(ScalarType.Float32);
        var loss = criterion.Loss(logits, targets);
        foreach (var aux in (_twin as ClassifierModel)?.AuxiliaryLogits ?? [])
            loss = loss + auxWeight * criterion.Loss(aux.to(ScalarType.Float32), targets);
        foreach (var (_, twin) in _parameters) twin.grad?.zero_();
        (LossScale == 1 ? loss : loss * LossScale).backward();

        bool finite = true;
        using (no_grad())
        {
            foreach (var (master, twin) in _parameters)
            {
                if (twin.grad is null) continue;
                var grad = twin.grad.to(ScalarType.Float32);
                using Scalar scale = LossScale;
                if (LossScale != 1) grad.div_(scale);
                if (master.grad is null) master.grad = grad;
                else { master.grad.copy_(grad); grad.Dispose(); }
            }
            // Averaged over ranks before the overflow check, so every rank skips the same steps.
            gradientsReady?.Invoke();
            if (_dynamicScale)
            {
                // One read for all the gradients (not one per tensor: 65 for ResNet-20, 161 for ResNet-50).
                using var checks = NewDisposeScope();
                var each = _parameters.Where(p => p.Master.grad is not null).Select(p => p.Master.grad!.isfinite().all()).ToList();
                finite = each.Count == 0 || stack(each).all().item<bool>();
            }
            foreach (var (master, twin) in _buffers) master.copy_(twin);
        }
        if (!finite)
        {
            LossScale /= 2;
            _goodSteps = 0;
            SkippedSteps++;
            return (logits, loss);
        }
        optimizer.Step();
        if (_dynamicScale && ++_goodSteps % _growthInterval == 0) LossScale *= 2;
        return (logits, loss);
    }

    public void Dispose() => _twin.Dispose();
}
