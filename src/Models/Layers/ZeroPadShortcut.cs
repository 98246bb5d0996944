using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>
/// The ResNet paper's option A shortcut: identity, subsampled by the stride, with the extra
/// channels filled by zeros, so it adds no parameters.
/// </summary>
public sealed class ZeroPadShortcut : nn.Module<Tensor, Tensor>
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
}
