using System.Globalization;
using Trainer.Recipes.Checkpoints;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>
/// Training produced a NaN or an infinity and may not go on (train.on_nan: stop, or the
/// rollbacks are used up). The message is one line naming the step, the epoch and the problem.
/// </summary>
public sealed class TrainingDivergedException(string message, long step, int epoch) : Exception(message)
{
    /// <summary>The optimizer step that went bad (1-based).</summary>
    public long Step { get; } = step;
    /// <summary>The epoch it was in (1-based).</summary>
    public int Epoch { get; } = epoch;
}

/// <summary>
/// The numbers a step is judged by, read back from the device together so the check costs no
/// synchronisation beyond the one reading the loss: the loss, the gradients' global norm (not for
/// fp16, whose loss scaling skips overflowing steps by design) and, on steps whose state will be
/// kept (a checkpoint, an epoch end, a stop), whether every weight and buffer is finite.
/// </summary>
internal static class StepCheck
{
    /// <summary>
    /// The loss, what is wrong (null when nothing is) and the values of <paramref name="alongside"/>
    /// (a small float tensor the caller wants read in the same transfer: the batch's correct predictions).
    /// </summary>
    public static (float Loss, string? Problem, float[] Alongside) Read(Tensor loss, Tensor? gradientNorm, Tensor? weightsFinite, Tensor? alongside = null)
    {
        using var scope = NewDisposeScope();
        var parts = new List<Tensor> { loss.detach().reshape(1).to(ScalarType.Float32) };
        if (gradientNorm is not null) parts.Add(gradientNorm.detach().reshape(1).to(ScalarType.Float32));
        if (weightsFinite is not null) parts.Add(weightsFinite.reshape(1).to(ScalarType.Float32));
        int checks = parts.Count;
        if (alongside is not null) parts.Add(alongside.reshape(-1).to(ScalarType.Float32));
        var values = cat(parts).cpu().data<float>().ToArray();
        float lossValue = values[0];
        string? problem = !float.IsFinite(lossValue) ? $"the loss is {Show(lossValue)}"
            : gradientNorm is not null && !float.IsFinite(values[1]) ? $"the gradient norm is {Show(values[1])}"
            : weightsFinite is not null && values[checks - 1] != 1 ? "the weights hold NaN or infinite values"
            : null;
        return (lossValue, problem, values[checks..]);
    }

    /// <summary>1 when every floating-point parameter and buffer of <paramref name="model"/> is finite, else 0 (on the device, not read back).</summary>
    public static Tensor WeightsFinite(nn.Module model)
    {
        using var scope = NewDisposeScope();
        var checks = model.parameters().Select(p => (Tensor)p).Concat(model.buffers())
            .Where(t => t.is_floating_point()).Select(t => t.isfinite().all()).ToArray();
        return (checks.Length == 0 ? tensor(true) : stack(checks).all()).MoveToOuterDisposeScope();
    }

    static string Show(float value) => float.IsNaN(value) ? "NaN" : value > 0 ? "+inf" : value < 0 && float.IsInfinity(value) ? "-inf" : value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// The last good state of a run, kept in host memory for train.on_nan: rollback: taken when the
/// engine starts, at every step that writes a mid-epoch checkpoint and at every epoch end (so a
/// rollback never crosses an epoch boundary), each time after the step's numbers were checked.
/// </summary>
internal sealed class GoodState(TrainingSession session) : IDisposable
{
    Checkpoint _state = SessionCheckpoint.Snapshot(session);

    /// <summary>The optimizer steps the good state had done.</summary>
    public long Step => _state.Meta.Step;

    public void Take()
    {
        var next = SessionCheckpoint.Snapshot(session);
        _state.Dispose();
        _state = next;
    }

    /// <summary>Puts the session back to the good state, with the learning rate multiplier lowered by <paramref name="lrFactor"/> and one more rollback counted.</summary>
    public void RollBack(double lrFactor)
    {
        double scale = session.LrScale * lrFactor;
        int rollbacks = session.NanRollbacks + 1;
        SessionCheckpoint.Restore(session, _state, "the last good state");
        session.LrScale = scale;
        session.NanRollbacks = rollbacks;
    }

    public void Dispose() => _state.Dispose();
}
