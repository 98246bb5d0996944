using Trainer.Data.Loading;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>Loss, top-1 and top-5 accuracy (fractions) over a number of samples.</summary>
public sealed record EvalResult(double Loss, double Top1, double Top5, long Samples);

/// <summary>Running sums of loss and correct predictions over batches.</summary>
public sealed class AccuracyMeter
{
    double _lossSum;
    long _top1, _top5;
    public long Samples { get; private set; }

    /// <summary>Adds a batch; <paramref name="meanLoss"/> is the batch's mean loss.</summary>
    public void Add(Tensor logits, Tensor labels, double meanLoss)
    {
        using var scope = NewDisposeScope();
        long n = labels.shape[0];
        int k = (int)Math.Min(5, logits.shape[1]);
        var topk = logits.topk(k, dim: 1).indexes;
        var hits = topk.eq(labels.unsqueeze(1));
        _top1 += hits[.., 0].sum().item<long>();
        _top5 += hits.any(1).sum().item<long>();
        _lossSum += meanLoss * n;
        Samples += n;
    }

    public double Loss => Samples == 0 ? double.NaN : _lossSum / Samples;
    public double Top1 => Samples == 0 ? double.NaN : (double)_top1 / Samples;
    public double Top5 => Samples == 0 ? double.NaN : (double)_top5 / Samples;
    public EvalResult Result => new(Loss, Top1, Top5, Samples);
}

public static class Evaluator
{
    public static EvalResult Evaluate(nn.Module<Tensor, Tensor> model, BatchLoader loader, Device device, bool channelsLast)
    {
        model.eval();
        var meter = new AccuracyMeter();
        using var _ = no_grad();
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
            using (var scope = NewDisposeScope())
            {
                var (x, y) = Inputs.ToDevice(batch, device, channelsLast);
                var logits = model.forward(x);
                var loss = nn.functional.cross_entropy(logits, y);
                meter.Add(logits, y, loss.item<float>());
            }
        }
        return meter.Result;
    }
}

public static class Inputs
{
    /// <summary>Moves a batch to the device; NHWC strides make CPU convolutions faster without changing results' meaning.</summary>
    public static (Tensor Images, Tensor Labels) ToDevice(Batch batch, Device device, bool channelsLast)
    {
        var x = batch.Images.to(device);
        if (channelsLast) x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        return (x, batch.Labels.to(device));
    }
}
