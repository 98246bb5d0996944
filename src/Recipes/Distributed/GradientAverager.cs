using System.Diagnostics;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Distributed;

/// <summary>
/// Averages the gradients of a step over the ranks, in fused buckets (Horovod's tensor fusion,
/// DDP's gradient buckets): the gradients are packed, last layer first, into flat buffers of up to
/// <paramref name="bucketBytes"/> (25 MB, DDP's default), each summed by one allreduce and
/// unpacked again, instead of one call per parameter. Only parameters that have a gradient travel
/// (frozen layers of a fine-tuning run do not); every rank has the same ones, since every rank runs
/// the same model and code. It runs after backward, not during it: on CPU the allreduce's copies
/// use the same cores as backward, and its whole share of a step is what overlapping could save at
/// most (`trainer bench --nproc` prints it; docs/distributed.md).
/// </summary>
internal sealed class GradientAverager(ICollective collective, IReadOnlyList<Parameter> parameters, long bucketBytes = 25L << 20)
{
    readonly Stopwatch _clock = new();
    // Each bucket's flat buffer (and, on a GPU, its page-locked host copy), kept across steps.
    readonly Dictionary<int, (Tensor Flat, Tensor Host)> _buffers = new();

    /// <summary>Seconds spent averaging so far (packing, allreduce, unpacking).</summary>
    public double Seconds => _clock.Elapsed.TotalSeconds;
    /// <summary>Steps averaged so far.</summary>
    public long Steps { get; private set; }

    /// <summary>
    /// Replaces each gradient by its mean over ranks, each rank weighed by its share of the step's
    /// batch (<paramref name="localSamples"/> of <paramref name="globalSamples"/>), so the result is
    /// the gradient of the mean loss over the global batch, as one process would compute it.
    /// </summary>
    public void Average(long localSamples, long globalSamples)
    {
        if (collective.Size == 1) return;
        _clock.Start();
        using (no_grad())
        using (NewDisposeScope())
        {
            // Each rank's mean-loss gradient times n_r * N / n sums to N x the global mean gradient.
            double weight = (double)localSamples * collective.Size / globalSamples;
            var bucket = new List<Tensor>();
            long bytes = 0;
            int index = 0;
            for (int i = parameters.Count - 1; i >= 0; i--)
            {
                if (parameters[i].grad is not { } grad) continue;
                bucket.Add(grad);
                bytes += grad.numel() * grad.ElementSize;
                if (bytes < bucketBytes) continue;
                Reduce(bucket, weight, index++);
                bucket.Clear();
                bytes = 0;
            }
            if (bucket.Count > 0) Reduce(bucket, weight, index);
        }
        Steps++;
        _clock.Stop();
    }

    void Reduce(List<Tensor> grads, double weight, int index)
    {
        var (flat, host) = Buffers(index, grads);
        long offset = 0;
        foreach (var g in grads)
        {
            long n = g.numel();
            flat.narrow(0, offset, n).copy_(g.reshape(-1));
            offset += n;
        }
        if (weight != 1) flat.mul_(weight);
        if (!ReferenceEquals(host, flat)) host.copy_(flat);
        collective.SumInPlace(host);
        host.div_(collective.Size);
        if (!ReferenceEquals(host, flat)) flat.copy_(host);
        offset = 0;
        foreach (var g in grads)
        {
            long n = g.numel();
            g.copy_(flat.narrow(0, offset, n).view_as(g));
            offset += n;
        }
    }

    /// <summary>
    /// Bucket <paramref name="index"/>'s flat buffer, and the host memory MPI reads (the same buffer
    /// on the CPU; a page-locked copy for a GPU). Kept across steps: a fresh 25 MB buffer every step
    /// cost tens of thousands of page faults a step.
    /// </summary>
    (Tensor Flat, Tensor Host) Buffers(int index, List<Tensor> grads)
    {
        long numel = grads.Sum(g => g.numel());
        var (dtype, device) = (grads[0].dtype, grads[0].device);
        if (_buffers.TryGetValue(index, out var kept) && kept.Flat.numel() == numel && kept.Flat.dtype == dtype && kept.Flat.device == device)
            return kept;
        kept.Flat?.Dispose();
        if (!ReferenceEquals(kept.Host, kept.Flat)) kept.Host?.Dispose();
        var flat = empty(numel, dtype, device).DetachFromDisposeScope();
        var host = flat;
        if (device.type != TorchSharp.DeviceType.CPU)
        {
            using var plain = empty(numel, dtype, CPU);
            host = plain.pin_memory().DetachFromDisposeScope();
        }
        _buffers[index] = (flat, host);
        return (flat, host);
    }
}
