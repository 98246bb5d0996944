using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Models.Summary;

/// <summary>One layer's row: what it outputs for one image and what it costs.</summary>
public sealed record LayerCost(string Name, string Type, long[] OutputShape, long Params, long Macs, long OutputBytes);

/// <summary>A whole model's rows and totals for one input size (batch 1).</summary>
public sealed record ModelCost(string Model, long[] Input, IReadOnlyList<LayerCost> Layers, long Params, long TrainableParams, long Macs, long ActivationBytes);

/// <summary>
/// Per-layer output shape, parameters, multiply-accumulates and output memory, counted as the
/// lecture tables count them, from one forward pass of a single image through forward hooks on
/// every leaf module:
/// conv MACs = Cout x H' x W' x (Cin / groups) x K x K; linear MACs = in x out; pooling ops =
/// outputs x K x K (adaptive pooling: each input value once); normalisation and activations 0;
/// memory = output values x 4 bytes. Operations outside modules (additions, functional ReLUs,
/// padding) are not counted, as torchvision's published multiply-add figures do not count them.
/// </summary>
public static class CostSummary
{
    public static ModelCost Measure(string modelName, nn.Module<Tensor, Tensor> model, long[] input)
    {
        var rows = new List<LayerCost>();
        var hooks = new List<Action>();
        // A single-layer model (a bare convolution) is its own leaf.
        var modules = model.children().Any() ? model.named_modules() : [(model.GetType().Name, (nn.Module)model)];
        foreach (var (name, module) in modules)
        {
            if (module.children().Any() || module is not nn.Module<Tensor, Tensor> leaf) continue;
            var remover = leaf.register_forward_hook((m, x, y) =>
            {
                var shape = y.shape.Skip(1).ToArray();
                long ownParams = m.parameters().Sum(p => p.numel());
                rows.Add(new LayerCost(name, m.GetType().Name, shape, ownParams, Macs(m, x, y), y.numel() * 4));
                return y;
            });
            hooks.Add(remover.remove);
        }
        model.eval();
        using (no_grad())
        using (var x = zeros([1, .. input]))
        using (var _ = model.call(x)) { }
        foreach (var remove in hooks) remove();
        long total = model.parameters().Sum(p => p.numel());
        long trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        return new ModelCost(modelName, input, rows, total, trainable, rows.Sum(r => r.Macs), rows.Sum(r => r.OutputBytes));
    }

    static long Macs(nn.Module m, Tensor x, Tensor y) => m switch
    {
        Convolution c => y.numel() * (c.in_channels / c.groups) * c.kernel_size.Aggregate(1L, (a, k) => a * k),
        Linear l => l.in_features * l.out_features * (y.numel() / l.out_features),
        MaxPool2d p => y.numel() * p.kernel_size.Aggregate(1L, (a, k) => a * k),
        AvgPool2d p => y.numel() * p.kernel_size.Aggregate(1L, (a, k) => a * k),
        AdaptiveAvgPool2d or AdaptiveMaxPool2d => x.numel(),
        _ => 0,
    };
}
