using TorchSharp;
using Trainer.Models;
using static TorchSharp.torch;

namespace Trainer.Recipes.Regularization;

/// <summary>
/// An exponential moving average of a model's weights (Polyak averaging, as the Inception-v3,
/// MobileNet and EfficientNet recipes evaluate it), kept in a second copy of the model that is
/// evaluated beside it. After each step: avg = d avg + (1 - d) w for parameters, with
/// d = min(decay, (1 + n) / (10 + n)) at update n (TensorFlow's ExponentialMovingAverage with
/// num_updates, so short runs are not dominated by the initial weights); buffers (BatchNorm
/// statistics) are copied.
/// </summary>
internal sealed class WeightAverage : IDisposable
{
    readonly (Tensor Average, Tensor Live)[] _parameters, _buffers;

    public WeightAverage(nn.Module<Tensor, Tensor> live, nn.Module<Tensor, Tensor> copy, double decay)
    {
        Model = copy;
        Decay = decay;
        var copyParameters = copy.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        _parameters = live.named_parameters().Select(p => (copyParameters[p.name], (Tensor)p.parameter)).ToArray();
        var copyBuffers = copy.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        _buffers = live.named_buffers().Select(b => (copyBuffers[b.name], b.buffer)).ToArray();
        foreach (var (average, _) in _parameters) average.requires_grad_(false);
        using (no_grad())
        {
            foreach (var (average, w) in _parameters) average.copy_(w);
            foreach (var (average, b) in _buffers) average.copy_(b);
        }
        copy.eval();
    }

    /// <summary>The averaged model (evaluation only).</summary>
    public nn.Module<Tensor, Tensor> Model { get; }
    public double Decay { get; }
    /// <summary>Updates so far (restored on resume).</summary>
    public long Updates { get; set; }

    /// <summary>The decay the next update uses.</summary>
    public double NextDecay => Math.Min(Decay, (1.0 + Updates + 1) / (10.0 + Updates + 1));

    public void Update()
    {
        double d = NextDecay;
        Updates++;
        using var _ = no_grad();
        using Scalar keep = d, take = 1 - d;
        foreach (var (average, w) in _parameters) average.mul_(keep).add_(w, alpha: take);
        foreach (var (average, b) in _buffers) average.copy_(b);
    }

    public void Dispose() => Model.Dispose();
}
