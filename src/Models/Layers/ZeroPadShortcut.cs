using Trainer.Models.Onnx;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>
/// The ResNet paper's option A shortcut: identity, subsampled by the stride, with the extra
/// channels filled by zeros, so it adds no parameters.
/// </summary>
internal sealed class ZeroPadShortcut : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly long _stride;
    readonly long _extraChannels;

    public ZeroPadShortcut(long inChannels, long outChannels, long stride) : base(nameof(ZeroPadShortcut))
    {
        _stride = stride;
        _extraChannels = outChannels - inChannels;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var sub = _stride == 1 ? x : x[.., .., TensorIndex.Slice(null, null, _stride), TensorIndex.Slice(null, null, _stride)];
        if (_extraChannels == 0) return sub;
        long before = _extraChannels / 2, after = _extraChannels - before;
        return nn.functional.pad(sub, new long[] { 0, 0, 0, 0, before, after });
    }

    // Slice with steps subsamples; Pad (zeros) adds the channels: pads are [begins of N, C, H, W, ends of N, C, H, W].
    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        var sub = _stride == 1 ? x : g.Node("Slice", [x, g.Int64s(0, 0), g.Int64s(long.MaxValue, long.MaxValue), g.Int64s(2, 3), g.Int64s(_stride, _stride)]);
        if (_extraChannels == 0) return sub;
        long before = _extraChannels / 2, after = _extraChannels - before;
        return g.Node("Pad", [sub, g.Int64s(0, before, 0, 0, 0, after, 0, 0)]);
    }
}
