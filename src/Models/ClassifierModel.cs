using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Models;

/// <summary>
/// What every model answers, whatever its family: its features (everything up to the pooled
/// feature vector), its head (the classifier), a reset of the head to N classes, and its ordered
/// stages, so transfer learning and freezing are one generic piece of code.
/// Children are invoked with <c>call</c> (not <c>forward</c>) so forward hooks, and with them the
/// cost summary, see every layer.
/// </summary>
public abstract class ClassifierModel(string name) : nn.Module<Tensor, Tensor>(name)
{
    /// <summary>The pooled, flattened feature vector (N, FeatureCount).</summary>
    public abstract Tensor ForwardFeatures(Tensor x);

    /// <summary>Logits of auxiliary classifiers from the last training-mode forward (GoogLeNet's two); empty for most models.</summary>
    public virtual IReadOnlyList<Tensor> AuxiliaryLogits => [];

    /// <summary>The final linear classifier.</summary>
    public abstract Linear Head { get; }

    /// <summary>The stages from input to head, in order (stem first), each one or more modules; freezing all but the last k is a loop over these.</summary>
    public abstract IReadOnlyList<nn.Module[]> Stages { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var logits = Head.call(ForwardFeatures(x));
        // Auxiliary logits live as long as the main ones (the training step's scope).
        foreach (var aux in AuxiliaryLogits) aux.MoveToOuterDisposeScope();
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>Replaces the classifier's weights with a fresh one for <paramref name="numClasses"/> classes (PyTorch's default init).</summary>
    public void ResetHead(int numClasses)
    {
        using var fresh = nn.Linear(Head.in_features, numClasses);
        var device = Head.weight!.device;
        Head.weight = fresh.weight!.detach().to(device).clone().AsParameter();
        Head.bias = fresh.bias!.detach().to(device).clone().AsParameter();
        Head.out_features = numClasses;
    }
}

static class ParameterExtensions
{
    public static Parameter AsParameter(this Tensor t) => new(t, requires_grad: true);
}
