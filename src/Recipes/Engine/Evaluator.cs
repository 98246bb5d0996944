using Trainer.Data.Loading;
using Trainer.Recipes.Distributed;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>Loss, top-1 and top-5 accuracy (fractions) over a number of samples.</summary>
public sealed record EvalResult(double Loss, double Top1, double Top5, long Samples);

/// <summary>Running sums of loss and correct predictions over batches.</summary>
internal sealed class AccuracyMeter
{
    double _lossSum;
    long _top1, _top5;
    public long Samples { get; private set; }

    public AccuracyMeter() { }

    /// <summary>A meter that continues from the sums of <paramref name="progress"/> (an epoch resumed mid-way).</summary>
    public AccuracyMeter(EpochProgress progress)
    {
        _lossSum = progress.LossSum;
        _top1 = progress.Top1;
        _top5 = progress.Top5;
        Samples = progress.Samples;
    }

    /// <summary>The running sums as an epoch's progress after <paramref name="batches"/> batches.</summary>
    public EpochProgress Progress(int batches, double lr, double seconds) => new(batches, _lossSum, _top1, _top5, Samples, lr, seconds);

    /// <summary>
    /// The batch's correct predictions on the device, not read back: (top-1 count, top-5 count) as
    /// float32 (exact to 2^24 samples a batch), so they can travel with the step's other numbers.
    /// </summary>
    public static Tensor Hits(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        int k = (int)Math.Min(5, logits.shape[1]);
        var hits = logits.topk(k, dim: 1).indexes.eq(labels.unsqueeze(1));
        return stack([hits[.., 0].sum(), hits.any(1).sum()]).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Adds a batch of <paramref name="samples"/> whose <see cref="Hits"/> were read as <paramref name="hits"/>; <paramref name="meanLoss"/> is its mean loss.</summary>
    public void Add(ReadOnlySpan<float> hits, long samples, double meanLoss)
    {
        _top1 += (long)hits[0];
        _top5 += (long)hits[1];
        _lossSum += meanLoss * samples;
        Samples += samples;
    }

    /// <summary>Adds a batch, reading its loss and hits from the device in one transfer.</summary>
    public void Add(Tensor logits, Tensor labels, Tensor meanLoss)
    {
        using var scope = NewDisposeScope();
        var values = cat([meanLoss.detach().reshape(1).to(ScalarType.Float32), Hits(logits, labels)]).cpu().data<float>().ToArray();
        Add(values.AsSpan(1), labels.shape[0], values[0]);
    }

    /// <summary>Adds the sums of another meter (a batch already measured), without measuring again.</summary>
    public void Add(AccuracyMeter other)
    {
        _lossSum += other._lossSum;
        _top1 += other._top1;
        _top5 += other._top5;
        Samples += other.Samples;
    }

    /// <summary>
    /// Replaces the sums by their totals over the ranks of a job (each rank measured its share of
    /// the batches), and <paramref name="alongside"/> by theirs in the same allreduce.
    /// </summary>
    public void SumOver(ICollective collective, Span<double> alongside = default)
    {
        if (collective.Size == 1) return;
        Span<double> sums = stackalloc double[4 + alongside.Length];
        (sums[0], sums[1], sums[2], sums[3]) = (_lossSum, _top1, _top5, Samples);
        alongside.CopyTo(sums[4..]);
        collective.SumInPlace(sums);
        (_lossSum, _top1, _top5, Samples) = (sums[0], (long)Math.Round(sums[1]), (long)Math.Round(sums[2]), (long)Math.Round(sums[3]));
        sums[4..].CopyTo(alongside);
    }

    public double Loss => Samples == 0 ? double.NaN : _lossSum / Samples;
    public double Top1 => Samples == 0 ? double.NaN : (double)_top1 / Samples;
    public double Top5 => Samples == 0 ? double.NaN : (double)_top5 / Samples;
    public EvalResult Result => new(Loss, Top1, Top5, Samples);
}

internal static class Evaluator
{
    /// <summary>
    /// The model's mean loss (over samples), top-1 and top-5 on every batch of <paramref name="loader"/>.
    /// <paramref name="batchEnded"/>, when given, sees each batch's logits and labels (alive during
    /// the call only), so a caller can check the metrics against another computation.
    /// In a job of several ranks (<paramref name="collective"/>), each rank evaluates its share of
    /// every batch (a sharded loader) and the sums are added up: every rank gets the metrics of the
    /// whole set.
    /// </summary>
    public static EvalResult Evaluate(nn.Module<Tensor, Tensor> model, BatchLoader loader, Device device, bool channelsLast, Action<Tensor, Tensor>? batchEnded = null,
        ICollective? collective = null)
    {
        model.eval();
        var meter = new AccuracyMeter();
        using var _ = no_grad();
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
            using (var scope = NewDisposeScope())
            {
                if (batch.Size == 0) continue;   // a rank's empty share of a last, small batch
                var (x, y) = Inputs.ToDevice(batch, device, channelsLast);
                var logits = Logits(model, x);
                var loss = nn.functional.cross_entropy(logits, y);
                meter.Add(logits, y, loss);
                batchEnded?.Invoke(logits, y);
            }
        }
        if (collective is not null) meter.SumOver(collective);
        return meter.Result;
    }

    /// <summary>
    /// The model's logits; for (N, V, C, H, W) inputs (the 10-crop test) the mean of the V views'
    /// logits, one view at a time so memory stays that of a single-view batch.
    /// </summary>
    public static Tensor Logits(nn.Module<Tensor, Tensor> model, Tensor x)
    {
        if (x.dim() == 4) return model.call(x);
        using var scope = NewDisposeScope();
        long views = x.shape[1];
        var sum = model.call(x[.., 0]);
        for (long v = 1; v < views; v++) sum = sum + model.call(x[.., v]);
        return (sum / views).MoveToOuterDisposeScope();
    }
}

internal static class Inputs
{
    /// <summary>
    /// Moves a batch to the device (non-blocking from pinned memory on CUDA; a batch of uint8
    /// pixels is sent as bytes and finished there: Batch.ImagesOn); NHWC strides make
    /// convolutions faster without changing results' meaning. Image-folder batches already come
    /// channels-last, so the reordering is free for them.
    /// </summary>
    public static (Tensor Images, Tensor Labels) ToDevice(Batch batch, Device device, bool channelsLast)
    {
        var x = batch.ImagesOn(device);
        if (channelsLast)
        {
            // (N, C, H, W) or (N, V, C, H, W): channels go last in memory.
            int c = (int)x.dim() - 3;
            var toLast = Enumerable.Range(0, (int)x.dim()).Where(d => d != c).Append(c).Select(d => (long)d).ToArray();
            var back = new long[toLast.Length];
            for (int i = 0; i < toLast.Length; i++) back[toLast[i]] = i;
            x = x.permute(toLast).contiguous().permute(back);
        }
        return (x, batch.Labels.to(device));
    }
}
