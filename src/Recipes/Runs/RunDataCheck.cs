using Trainer.Data;
using Trainer.Data.Loading;
using static TorchSharp.torch;

namespace Trainer.Recipes.Runs;

/// <summary>Checks made before the first step on what a caller brings (its own data, its own model), so a mistake is one line, not a libtorch error mid-run.</summary>
static class RunDataCheck
{
    /// <summary>Every label of every split is a class index: 0 to classes - 1.</summary>
    public static void RequireLabelsInRange(RunData data)
    {
        int classes = data.Classes.Count;
        if (classes == 0) throw new BadInputException($"{data.Train.Source} names no classes");
        foreach (var split in new[] { data.Train, data.Validation, data.Test })
        {
            if (split is null) continue;
            if (!split.Classes.SequenceEqual(data.Classes))
                throw new BadInputException($"{split.Source} names other classes than the training data ({split.Classes.Count} against {classes}, or in another order): every split must name the same classes in the same order");
            for (int i = 0; i < split.Count; i++)
            {
                int label = split.Label(i);
                if (label < 0 || label >= classes)
                    throw new BadInputException($"{split.Source}: image {i} has label {label}, outside 0..{classes - 1} ({classes} classes)");
            }
        }
    }

    /// <summary>
    /// One forward of a small batch shaped as the loader's, in evaluation mode (no statistics move,
    /// nothing random is drawn): a classifier returns (batch, classes) logits.
    /// </summary>
    public static void RequireClassifier(nn.Module<Tensor, Tensor> model, string name, SampleLayout layout, int classes, Device device)
    {
        const int probe = 2;
        bool training = model.training;
        long[] shape;
        try
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            model.eval();
            shape = model.call(zeros(probe, layout.Channels, layout.Height, layout.Width, device: device)).shape;
        }
        catch (Exception e) when (e is not BadInputException)
        {
            throw new BadInputException($"model {name} fails on a batch of ({probe}, {layout.Channels}, {layout.Height}, {layout.Width}) images: {e.Message.Split('\n')[0]}");
        }
        finally
        {
            model.train(training);
        }
        if (shape.Length != 2 || shape[0] != probe || shape[1] != classes)
            throw new BadInputException($"model {name} returns ({string.Join(", ", shape)}) for a batch of {probe} images, but a classifier of {classes} classes must return ({probe}, {classes}) logits");
    }
}
