using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Trainer.Recipes.Distributed;

/// <summary>
/// SyncBatchNorm (train.sync_bn): in training, every BatchNorm2d normalises with the mean and
/// variance of the whole global batch, its sums added up over the ranks, and its backward adds up
/// the two gradient sums it needs the same way (as PyTorch's SyncBatchNorm). On N ranks that is the
/// BatchNorm one process computes over the global batch. The models keep their BatchNorm2d layers
/// (and so their state_dict): a forward hook replaces each layer's training output by the
/// synchronised one, and its running statistics by those of the global batch. The layer's own
/// local computation runs first and is discarded; BatchNorm is a small part of a step.
/// </summary>
internal sealed class SyncBatchNorm : IDisposable
{
    readonly List<Action> _removers = new();
    readonly Dictionary<BatchNorm2d, (Tensor Mean, Tensor Var)> _before = new();

    SyncBatchNorm(ICollective collective, nn.Module model)
    {
        foreach (var module in model.modules().OfType<BatchNorm2d>())
        {
            var bn = module;
            // The layer's own forward updates its running statistics from the local batch: keep them as they were.
            _removers.Add(bn.register_forward_pre_hook((m, x) =>
            {
                if (m.training && bn.running_mean is not null && bn.running_var is not null)
                    _before[bn] = (bn.running_mean.clone(), bn.running_var.clone());
                return x;
            }).remove);
            _removers.Add(bn.register_forward_hook((m, x, y) =>
            {
                if (!m.training || !_before.Remove(bn, out var before)) return y;
                using (no_grad())
                {
                    bn.running_mean!.copy_(before.Mean);
                    bn.running_var!.copy_(before.Var);
                }
                before.Mean.Dispose();
                before.Var.Dispose();
                return SyncNormFunction.apply(x, bn.weight, bn.bias, new SyncNormLayer(collective, bn));
            }).remove);
        }
    }

    /// <summary>Synchronises every BatchNorm2d of <paramref name="model"/> over the ranks of <paramref name="collective"/> until disposed.</summary>
    public static SyncBatchNorm Attach(ICollective collective, nn.Module model) => new(collective, model);

    public void Dispose()
    {
        foreach (var remove in _removers) remove();
        _removers.Clear();
    }
}

/// <summary>What the synchronised normalisation of one layer needs besides its tensors.</summary>
sealed record SyncNormLayer(ICollective Collective, BatchNorm2d Layer);

/// <summary>
/// Batch normalisation over all ranks' images, and its backward:
/// dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), both means over the global batch.
/// The gradients of gamma and beta are this rank's own sums (the gradient averaging adds them up).
/// Statistics are summed in float64; a low-precision input (a mixed-precision twin) is normalised
/// in float32 and handed back in its own type.
/// </summary>
sealed class SyncNormFunction : SingleTensorFunction<SyncNormFunction>
{
    static readonly long[] Reduced = [0, 2, 3];

    public override string Name => "SyncBatchNorm";

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var weight = vars[1] as Tensor;
        var bias = vars[2] as Tensor;
        var layer = (SyncNormLayer)vars[3];
        var bn = layer.Layer;
        long channels = x.shape[1];
        var xf = x.to(ScalarType.Float32);
        long local = xf.numel() / channels;
        var stats = cat([xf.sum(Reduced, type: ScalarType.Float64), xf.square().sum(Reduced, type: ScalarType.Float64),
            tensor(new double[] { local }, device: x.device)]);
        stats = Summed(layer.Collective, stats);
        double count = stats[2 * channels].item<double>();
        var mean = stats.narrow(0, 0, channels) / count;
        var variance = (stats.narrow(0, channels, channels) / count - mean.square()).clamp_min(0);
        double momentum = bn.momentum ?? 0.1;
        bn.running_mean!.mul_(1 - momentum).add_(mean.to(bn.running_mean.dtype), alpha: momentum);
        bn.running_var!.mul_(1 - momentum).add_((variance * (count / Math.Max(count - 1, 1))).to(bn.running_var.dtype), alpha: momentum);
        var invstd = (variance + bn.eps).rsqrt().to(ScalarType.Float32);
        var xhat = (xf - mean.to(ScalarType.Float32).view(1, channels, 1, 1)) * invstd.view(1, channels, 1, 1);
        var y = xhat;
        if (weight is not null) y = y * weight.view(1, channels, 1, 1);
        if (bias is not null) y = y + bias.view(1, channels, 1, 1);
        ctx.save_for_backward([xhat, invstd, weight ?? ones(channels, device: x.device)]);
        ctx.save_data("layer", layer);
        ctx.save_data("count", count);
        ctx.save_data("dtype", x.dtype);
        ctx.save_data("affine", weight is not null && bias is not null);
        return y.to(x.dtype);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (xhat, invstd, weight) = (saved[0], saved[1], saved[2]);
        var layer = (SyncNormLayer)ctx.get_data("layer");
        double count = (double)ctx.get_data("count");
        var dtype = (ScalarType)ctx.get_data("dtype");
        long channels = xhat.shape[1];
        var dy = gradOutput.to(ScalarType.Float32);
        var sumDy = dy.sum(Reduced);
        var sumDyXhat = (dy * xhat).sum(Reduced);
        var sums = Summed(layer.Collective, cat([sumDy, sumDyXhat]).to(ScalarType.Float64));
        var meanDy = (sums.narrow(0, 0, channels) / count).to(ScalarType.Float32).view(1, channels, 1, 1);
        var meanDyXhat = (sums.narrow(0, channels, channels) / count).to(ScalarType.Float32).view(1, channels, 1, 1);
        var dx = (dy - meanDy - xhat * meanDyXhat) * (invstd * weight).view(1, channels, 1, 1);
        bool affine = (bool)ctx.get_data("affine");
        return [dx.to(dtype), affine ? sumDyXhat : null!, affine ? sumDy : null!, null!];
    }

    /// <summary>The element-wise sum over the ranks of a float64 vector (staged through host memory on a GPU).</summary>
    static Tensor Summed(ICollective collective, Tensor values)
    {
        if (collective.Size == 1) return values;
        var host = values.device.type == TorchSharp.DeviceType.CPU ? values.contiguous() : values.cpu();
        collective.SumInPlace(host);
        return host.to(values.device);
    }
}
