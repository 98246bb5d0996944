using TorchSharp.Modules;
using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Optim;
using Trainer.Recipes.Weights;
using static TorchSharp.torch;

namespace Trainer.Recipes.Transfer;

/// <summary>
/// Which parameters train, and at what rates, when a pretrained network is fine-tuned: the head
/// only, the head and the last k stages, or everything; in one phase, or head-only for the first
/// epochs and then the configured layers at a lower rate. Frozen parameters stop requiring
/// gradients (no backward pass through them, no update), and frozen BatchNorm layers stay in eval
/// mode so their running statistics keep the pretrained values unless asked otherwise.
/// The optimizer receives every parameter that trains in some phase, with the pretrained ones at
/// finetune.backbone_lr times the rate; a parameter frozen in the current phase has no gradient
/// and the optimizer skips it.
/// </summary>
internal sealed class FineTuning
{
    readonly ClassifierModel _model;
    readonly FinetuneConfig _config;
    readonly IReadOnlyList<string> _headPrefixes;
    readonly IReadOnlyList<string> _finalPrefixes;

    public FineTuning(ClassifierModel model, FinetuneConfig config)
    {
        _model = model;
        _config = config;
        _headPrefixes = WeightsFit.HeadPrefixes(model);
        _finalPrefixes = config.Train switch
        {
            TrainableLayers.All => [""],
            TrainableLayers.Head => _headPrefixes,
            _ => [.. _headPrefixes, .. StagePrefixes(model, config.Stages)],
        };
    }

    /// <summary>The module-name prefixes of the last <paramref name="k"/> stages ("layer4." for k = 1 on a ResNet).</summary>
    public static IReadOnlyList<string> StagePrefixes(ClassifierModel model, int k)
    {
        var names = model.named_modules().Where(m => m.name.Length > 0).ToList();
        return model.Stages.TakeLast(k).SelectMany(stage => stage)
            .Select(module => names.First(m => ReferenceEquals(m.module, module)).name + ".").ToList();
    }

    /// <summary>Whether epoch <paramref name="epoch"/> (0-based) is in the head-only first phase.</summary>
    public bool InHeadPhase(int epoch) => epoch < _config.HeadEpochs;

    IReadOnlyList<string> TrainablePrefixes(int epoch) => InHeadPhase(epoch) ? _headPrefixes : _finalPrefixes;

    static bool Under(string name, IReadOnlyList<string> prefixes) => prefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal));

    bool IsHead(string name) => Under(name, _headPrefixes);

    /// <summary>Parameter groups over everything that trains in some phase: the head at the full rate, the rest at backbone_lr times it; BatchNorm and biases undecayed when the optimizer says so.</summary>
    public IReadOnlyList<ParameterGroup> Groups(OptimizerConfig optimizer)
    {
        var trained = _model.named_parameters().Where(p => Under(p.name, _finalPrefixes) || IsHead(p.name)).ToList();
        var head = trained.Where(p => IsHead(p.name)).ToList();
        var backbone = trained.Where(p => !IsHead(p.name)).ToList();
        var groups = new List<ParameterGroup>();
        void Add(List<(string, Parameter)> members, double lrScale)
        {
            if (members.Count == 0) return;
            if (!optimizer.NoDecayBnBias) { groups.Add(new ParameterGroup(members, optimizer.WeightDecay, lrScale)); return; }
            groups.Add(new ParameterGroup(members.Where(p => p.Item2.dim() > 1).ToList(), optimizer.WeightDecay, lrScale));
            groups.Add(new ParameterGroup(members.Where(p => p.Item2.dim() <= 1).ToList(), 0, lrScale));
        }
        Add(head, 1);
        Add(backbone, _config.BackboneLr);
        return groups;
    }

    /// <summary>
    /// Sets what trains in epoch <paramref name="epoch"/>: requires_grad on the parameters of this
    /// phase only, and (called after model.train()) eval mode for the BatchNorm layers left frozen.
    /// </summary>
    public void Apply(int epoch)
    {
        var prefixes = TrainablePrefixes(epoch);
        foreach (var (name, p) in _model.named_parameters())
        {
            bool train = Under(name, prefixes);
            p.requires_grad = train;
            if (!train && p.grad is not null) p.grad = null;
        }
        if (_config.UpdateFrozenBn || !_model.training) return;
        foreach (var (name, module) in _model.named_modules())
            if (module is BatchNorm2d or BatchNorm1d && !Under(name + ".", prefixes)) module.eval();
    }

    /// <summary>Parameters that train in epoch <paramref name="epoch"/>.</summary>
    public long TrainableParameters(int epoch)
    {
        var prefixes = TrainablePrefixes(epoch);
        return _model.named_parameters().Where(p => Under(p.name, prefixes)).Sum(p => p.parameter.numel());
    }
}
