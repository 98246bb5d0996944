using TorchSharp;
using Trainer.Models.Onnx;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>
/// Stochastic depth (Huang et al. 2016) in torchvision's "row" mode: in training each sample's
/// residual branch is dropped with probability p and kept ones are scaled by 1/(1-p); in
/// evaluation it is the identity.
/// </summary>
internal sealed class StochasticDepth : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly double _p;

    public StochasticDepth(double p) : base(nameof(StochasticDepth))
    {
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), $"drop probability must be in [0, 1], got {p}");
        _p = p;
    }

    public double DropProbability => _p;

    public override Tensor forward(Tensor x)
    {
        if (!training || _p == 0) return x.alias();
        double survival = 1 - _p;
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[0] = x.shape[0];
        using var keep = empty(shape, dtype: x.dtype, device: x.device).bernoulli_(survival);
        using Scalar survivalScalar = survival;
        if (survival > 0) keep.div_(survivalScalar);
        return x * keep;
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x) => x;
}
