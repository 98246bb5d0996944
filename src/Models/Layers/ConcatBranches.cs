using TorchSharp.Modules;
using Trainer.Models.Onnx;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>
/// The Inception idea in one module: every branch reads the same input and their outputs are
/// concatenated along the channels. A branch is any module (a convolution, a Sequential of them,
/// a pool); a branch can itself end in a ConcatBranches (Inception-v4's split 1x3 / 3x1 endings).
/// </summary>
internal sealed class ConcatBranches : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    readonly ModuleList<nn.Module<Tensor, Tensor>> branches;

    public ConcatBranches(params nn.Module<Tensor, Tensor>[] branches) : base(nameof(ConcatBranches))
    {
        this.branches = nn.ModuleList(branches);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return cat(branches.Select(b => b.call(x)).ToList(), 1).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(OnnxGraphBuilder g, string x) => g.Concat(branches.Select(b => g.Module((nn.Module)b, x)).ToList());
}
