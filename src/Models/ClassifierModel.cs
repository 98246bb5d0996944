using TorchSharp;
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

    /// <summary>
    /// The ONNX nodes of <see cref="ForwardFeatures"/> in evaluation mode, written next to it in each
    /// family: from the input value <paramref name="x"/> to the pooled, flattened features.
    /// </summary>
    /// A model of the caller's own (outside this library) has none: its export is refused by name.
    internal virtual string EmitFeatures(Onnx.OnnxGraphBuilder g, string x) =>
        throw new NotSupportedException($"model {GetName()} does not describe its ONNX graph: only the registry's models export to ONNX");

    /// <summary>The ONNX nodes of <see cref="forward"/> in evaluation mode: features, the MLP head's hidden layers if any, the classifier.</summary>
    internal string EmitLogits(Onnx.OnnxGraphBuilder g, string x)
    {
        var features = EmitFeatures(g, x);
        if (HiddenHead is not null) features = g.Module(HiddenHead, features);
        return g.Linear(Head, features);
    }

    /// <summary>Logits of auxiliary classifiers from the last training-mode forward (GoogLeNet's two); empty for most models.</summary>
    public virtual IReadOnlyList<Tensor> AuxiliaryLogits => [];

    /// <summary>The final linear classifier.</summary>
    public abstract Linear Head { get; }

    /// <summary>The stages from input to head, in order (stem first), each one or more modules; freezing all but the last k is a loop over these.</summary>
    public abstract IReadOnlyList<nn.Module[]> Stages { get; }

    /// <summary>The hidden layers of an MLP head (Linear, ReLU, Dropout) between the features and <see cref="Head"/>; null for a linear head.</summary>
    public Sequential? HiddenHead { get; private set; }

    /// <summary>State-dict prefix of <see cref="HiddenHead"/>.</summary>
    public const string HiddenHeadName = "head_hidden";

    /// <summary>Width of the vector the head's first layer reads (the pooled features; VGG and AlexNet: fc7's output).</summary>
    public long HeadInputs => HiddenHead is null ? Head.in_features : ((Linear)HiddenHead[0]).in_features;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var features = ForwardFeatures(x);
        if (HiddenHead is not null) features = HiddenHead.call(features);
        var logits = Head.call(features);
        // Auxiliary logits live as long as the main ones (the training step's scope).
        foreach (var aux in AuxiliaryLogits) aux.MoveToOuterDisposeScope();
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Replaces the classifier with a fresh linear layer for <paramref name="numClasses"/> classes,
    /// initialised as nn.Linear is (what a torchvision user gets from <c>model.fc = nn.Linear(...)</c>).
    /// </summary>
    public void ResetHead(int numClasses) => ResetFinalLayer(HeadInputs, numClasses, hidden: null);

    /// <summary>
    /// Replaces the classifier with an MLP: Linear(features, <paramref name="hidden"/>), ReLU,
    /// Dropout(<paramref name="dropout"/>), then the final Linear(hidden, classes), each layer
    /// initialised as nn.Linear is. The hidden layers' keys start with <see cref="HiddenHeadName"/>.
    /// </summary>
    public void ResetMlpHead(int numClasses, int hidden, double dropout)
    {
        var layers = nn.Sequential(("0", nn.Linear(HeadInputs, hidden)), ("1", nn.ReLU()), ("2", nn.Dropout(dropout)));
        ResetFinalLayer(hidden, numClasses, layers);
    }

    void ResetFinalLayer(long inputs, int numClasses, Sequential? hidden)
    {
        var device = Head.weight!.device;
        using var fresh = nn.Linear(inputs, numClasses);
        Head.weight = fresh.weight!.detach().to(device).clone().AsParameter();
        Head.bias = fresh.bias!.detach().to(device).clone().AsParameter();
        Head.in_features = inputs;
        Head.out_features = numClasses;
        if (HiddenHead is not null) register_module(HiddenHeadName, null!);
        HiddenHead = hidden;
        if (hidden is null) return;
        hidden.to(device);
        if (!training) hidden.eval();
        register_module(HiddenHeadName, hidden);
    }
}

static class ParameterExtensions
{
    public static Parameter AsParameter(this Tensor t) => new(t, requires_grad: true);
}
