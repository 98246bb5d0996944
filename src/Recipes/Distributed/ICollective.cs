using static TorchSharp.torch;

namespace Trainer.Recipes.Distributed;

/// <summary>
/// The collective operations data-parallel training needs, over the ranks of one job. Open MPI
/// (<see cref="OpenMpi"/>) is the one backend today; a GPU collective (NCCL) would be one more
/// implementation. Every rank calls the same operations in the same order; tensors are contiguous
/// and on the CPU (a GPU run stages them through host memory).
/// </summary>
public interface ICollective
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> - 1; rank 0 writes the run folder.</summary>
    int Rank { get; }
    /// <summary>Ranks in the job (the world size).</summary>
    int Size { get; }
    /// <summary>This rank's index among the ranks on its machine (picks its GPU).</summary>
    int LocalRank { get; }
    /// <summary>Ranks on this machine (they share its cores).</summary>
    int LocalSize { get; }

    /// <summary>Replaces <paramref name="t"/> (float32 or float64) by its element-wise sum over all ranks.</summary>
    void SumInPlace(Tensor t);
    /// <summary>Replaces <paramref name="values"/> by their element-wise sum over all ranks.</summary>
    void SumInPlace(Span<double> values);
    /// <summary>Replaces <paramref name="t"/> on every rank by rank <paramref name="root"/>'s.</summary>
    void Broadcast(Tensor t, int root = 0);
    /// <summary>Ends the whole job at once with <paramref name="exitCode"/> (a rank that failed).</summary>
    void Abort(int exitCode);
}

/// <summary>A job of one: every collective is the identity.</summary>
internal sealed class SingleProcess : ICollective
{
    public static readonly SingleProcess Instance = new();
    public int Rank => 0;
    public int Size => 1;
    public int LocalRank => 0;
    public int LocalSize => 1;
    public void SumInPlace(Tensor t) { }
    public void SumInPlace(Span<double> values) { }
    public void Broadcast(Tensor t, int root = 0) { }
    public void Abort(int exitCode) => Environment.Exit(exitCode);
}
