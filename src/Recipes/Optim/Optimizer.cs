using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Optim;

/// <summary>
/// What every optimizer here shares: parameter groups, the current learning rate (set by the
/// schedule before each step), optional gradient clipping by global norm, and per-parameter state
/// as plain named tensors that checkpoints save and restore exactly. Written here rather than
/// using TorchSharp's optimizers so the state is inspectable and the update rules are the
/// papers' (and PyTorch's) to the letter; each subclass is one update rule.
/// Update rules create their scalars explicitly and hold them (using) for the whole update: a
/// temporary scalar converted implicitly from a double can be collected by the GC while the
/// native call that uses it is still running (seen once as a corrupted-scalar error in libtorch;
/// the build now closes this for all of TorchSharp: build/KeepTorchSharpArgumentsAlive.targets).
/// </summary>
internal abstract class Optimizer : IDisposable
{
    /// <summary>State key of the step counter (Adam's bias correction needs it).</summary>
    const string StepsKey = "#steps";
    readonly Dictionary<string, Tensor> _state = new();

    protected Optimizer(IReadOnlyList<ParameterGroup> groups, double lr)
    {
        Groups = groups;
        LearningRate = lr;
    }

    public IReadOnlyList<ParameterGroup> Groups { get; }

    /// <summary>The base rate; each group uses it times its <see cref="ParameterGroup.LrScale"/>.</summary>
    public double LearningRate { get; set; }

    /// <summary>Clip the gradients' global 2-norm to this before each update (torch.nn.utils.clip_grad_norm_); 0: off.</summary>
    public double MaxGradNorm { get; init; }

    /// <summary>Updates done so far.</summary>
    public long Steps { get; private set; }

    /// <summary>
    /// Drops the gradients (PyTorch 2's zero_grad(set_to_none=True)): the next backward then
    /// stores each gradient instead of adding it to zeros, saving a fill and an add per parameter.
    /// A parameter that gets no gradient is skipped by <see cref="Step"/>, as torch.optim does.
    /// </summary>
    public void ZeroGrad()
    {
        foreach (var group in Groups)
            foreach (var (_, p) in group.Parameters)
                p.grad = null;
    }

    public void Step()
    {
        using var _ = no_grad();
        if (MaxGradNorm > 0) ClipGradients();
        Steps++;
        foreach (var group in Groups)
        {
            double lr = LearningRate * group.LrScale;
            foreach (var (name, p) in group.Parameters)
            {
                // Each read of .grad is a new handle: read it once, inside the scope that disposes it
                // (a stray handle would keep a dropped gradient alive until the garbage collector ran).
                using var scope = NewDisposeScope();
                if (p.grad is not { } grad) continue;
                Update(name, p, grad, lr, group.WeightDecay);
            }
        }
    }

    /// <summary>One parameter's update at rate <paramref name="lr"/>, inside no_grad and a dispose scope.</summary>
    protected abstract void Update(string name, Parameter p, Tensor grad, double lr, double weightDecay);

    /// <summary>
    /// Scales every gradient by min(1, max_norm / (total_norm + 1e-6)) as PyTorch does, without
    /// reading the norm back to the host (no synchronisation on a GPU).
    /// </summary>
    void ClipGradients()
    {
        using var scope = NewDisposeScope();
        var grads = Gradients();
        if (grads.Count == 0) return;
        using Scalar tiny = 1e-6.ToScalar(), limit = MaxGradNorm.ToScalar(), one = 1.0.ToScalar();
        var total = GlobalNorm(grads);
        var coefficient = total.add(tiny).reciprocal_().mul_(limit).clamp_max_(one);
        foreach (var g in grads) g.mul_(coefficient);
    }

    /// <summary>
    /// The gradients' global 2-norm as a scalar tensor on their device (not read back, so no
    /// synchronisation); null when no parameter has a gradient. It lives in the caller's dispose scope.
    /// </summary>
    public Tensor? GradientNorm()
    {
        using var scope = NewDisposeScope();
        var grads = Gradients();
        return grads.Count == 0 ? null : GlobalNorm(grads).MoveToOuterDisposeScope();
    }

    List<Tensor> Gradients() => Groups.SelectMany(g => g.Parameters).Select(p => p.Parameter.grad).OfType<Tensor>().ToList();

    static Tensor GlobalNorm(IReadOnlyList<Tensor> tensors) => stack(tensors.Select(t => t.norm()).ToArray()).norm();

    /// <summary>The state tensor <paramref name="slot"/> of parameter <paramref name="name"/>, created by <paramref name="create"/> on first use.</summary>
    protected Tensor Slot(string name, string slot, Func<Tensor> create)
    {
        var key = slot.Length == 0 ? name : $"{name}#{slot}";
        if (!_state.TryGetValue(key, out var tensor))
        {
            // The state outlives the step's dispose scope: it belongs to the optimizer.
            tensor = create().DetachFromDisposeScope();
            _state[key] = tensor;
        }
        return tensor;
    }

    /// <summary>The state tensor <paramref name="slot"/> of <paramref name="name"/> when it exists.</summary>
    protected bool TryGetSlot(string name, string slot, out Tensor tensor) =>
        _state.TryGetValue(slot.Length == 0 ? name : $"{name}#{slot}", out tensor!);

    /// <summary>Every state tensor by key ("param" or "param#slot"), plus the step count.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var state = new Dictionary<string, Tensor>(_state);
        if (Steps > 0) state[StepsKey] = tensor(Steps);
        return state;
    }

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        var byName = Groups.SelectMany(g => g.Parameters).ToDictionary(p => p.Name, p => p.Parameter);
        foreach (var old in _state.Values) old.Dispose();
        _state.Clear();
        Steps = 0;
        foreach (var (key, value) in state)
        {
            if (key == StepsKey) { Steps = value.item<long>(); continue; }
            var name = key.Split('#')[0];
            if (!byName.TryGetValue(name, out var p))
                throw new InvalidDataException($"optimizer state names parameter '{name}', which the model does not have (or which is frozen)");
            if (!value.shape.SequenceEqual(p.shape))
                throw new InvalidDataException($"optimizer state '{key}' has shape [{string.Join(", ", value.shape)}], the parameter [{string.Join(", ", p.shape)}]");
            var copy = value.to(p.device).clone();
            copy.DetachFromDisposeScope();
            _state[key] = copy;
        }
    }

    public void Dispose()
    {
        foreach (var t in _state.Values) t.Dispose();
        _state.Clear();
        GC.SuppressFinalize(this);
    }
}
