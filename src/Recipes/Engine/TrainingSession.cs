using Trainer.Data.Transforms;
using Trainer.Recipes.Config;
using Trainer.Recipes.Distributed;
using Trainer.Recipes.Optim;
using Trainer.Recipes.Regularization;
using Trainer.Recipes.Schedules;
using static TorchSharp.torch;

namespace Trainer.Recipes.Engine;

/// <summary>
/// Everything one training run consists of, and where it stands. The engine advances it;
/// sinks read it (the checkpoint sink saves it, a resume restores it).
/// </summary>
public sealed class TrainingSession
{
    internal TrainingSession() { }

    public required RunConfig Config { get; init; }
    public required nn.Module<Tensor, Tensor> Model { get; init; }
    internal Optimizer Optimizer { get; init; } = null!;
    internal LrSchedule Schedule { get; init; } = null!;
    public required Device Device { get; init; }
    public required Normalization Normalization { get; init; }
    public required IReadOnlyList<string> Classes { get; init; }
    /// <summary>Readable names of <see cref="Classes"/> (an image folder's names file); null: the classes are their own names.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }
    public required int TrainSamples { get; init; }
    public required int ValidationSamples { get; init; }
    public required int BatchesPerEpoch { get; init; }
    public long Parameters { get; init; }
    /// <summary>Parameters that train (in the last phase) when fine-tuning freezes some; null: all of them.</summary>
    public long? FrozenRunTrainable { get; init; }
    public long TrainableParameters => FrozenRunTrainable ?? Parameters;
    /// <summary>Frozen layers and phases of a fine-tuning run; null when everything trains.</summary>
    internal Transfer.FineTuning? FineTuning { get; init; }
    /// <summary>Set when train.precision is bf16 or fp16: the low-precision twin that computes each step.</summary>
    internal MixedPrecision? Mixed { get; init; }
    /// <summary>The training loss: cross-entropy, with label smoothing when configured.</summary>
    internal Criterion Criterion { get; init; } = Criterion.Plain;
    /// <summary>mixup / CutMix, when configured.</summary>
    internal BatchMixing? Mixing { get; init; }
    /// <summary>The moving average of the weights, when regularization.ema_decay is set.</summary>
    internal WeightAverage? Ema { get; init; }

    /// <summary>The ranks this run trains on together (data-parallel); a job of one unless MPI started it.</summary>
    internal ICollective Collective { get; init; } = SingleProcess.Instance;
    /// <summary>Averages each step's gradients over the ranks; null in a job of one.</summary>
    internal GradientAverager? Gradients { get; init; }

    /// <summary>Epochs to run in all (from train.epochs, or enough to reach train.iterations).</summary>
    public int TotalEpochs => RunLength.Of(Config.Train, BatchesPerEpoch).Epochs;

    /// <summary>True once the run has done all its epochs, or reached train.iterations.</summary>
    public bool Finished => Epoch >= TotalEpochs || (Config.Train.Iterations > 0 && Step >= Config.Train.Iterations);

    // Progress, advanced by the engine and restored on resume.
    /// <summary>Epochs completed.</summary>
    public int Epoch { get; set; }
    /// <summary>Optimizer iterations completed.</summary>
    public long Step { get; set; }
    public double BestTop1 { get; set; } = -1;
    public int BestEpoch { get; set; }
    /// <summary>Validation top-5 at the best (top-1) epoch.</summary>
    public double BestTop5 { get; set; } = -1;
    /// <summary>Training images processed so far, across resumes.</summary>
    public long ImagesSeen { get; set; }
    /// <summary>Training wall time so far, across resumes.</summary>
    public double ElapsedSeconds { get; set; }
    /// <summary>The metrics of the last completed epoch.</summary>
    public Dictionary<string, double> Metrics { get; set; } = new();
    /// <summary>Where the epoch under way stands (batches done, its running meters); <see cref="EpochProgress.Start"/> between epochs.</summary>
    public EpochProgress Progress { get; set; } = EpochProgress.Start;
    /// <summary>Multiplier of the schedule's rate: 1, lowered by train.nan_lr_factor at each rollback after bad numbers.</summary>
    public double LrScale { get; set; } = 1;
    /// <summary>Rollbacks after bad numbers so far (train.on_nan: rollback), across resumes.</summary>
    public int NanRollbacks { get; set; }
    /// <summary>True when the run stopped early on request (Ctrl-C, SIGTERM) after saving where it stands.</summary>
    public bool Stopped { get; set; }

    /// <summary>Set by <see cref="EndAfterThisEpoch"/>: the run ends when the epoch under way has ended (validated, saved, reported).</summary>
    public bool EndRequested { get; private set; }

    /// <summary>
    /// Ends the run after the epoch under way, as if it had reached its length: the sinks hear
    /// RunEnded (summary, final test). What a sink calls to stop early (on a plateau, a target
    /// accuracy, a budget). A later resume trains the remaining epochs.
    /// </summary>
    public void EndAfterThisEpoch() => EndRequested = true;
}

/// <summary>
/// Where an epoch stands between two of its batches: batches done, the running sums of the
/// training loss and top-1/top-5 hits over its samples, the last learning rate and the seconds
/// spent. A mid-epoch checkpoint keeps it, so a resumed epoch continues from the next batch and
/// ends with the metrics an uninterrupted one would have.
/// </summary>
public sealed record EpochProgress(int Batches, double LossSum, long Top1, long Top5, long Samples, double Lr, double Seconds)
{
    public static readonly EpochProgress Start = new(0, 0, 0, 0, 0, double.NaN, 0);
    [System.Text.Json.Serialization.JsonIgnore]
    public bool MidEpoch => Batches > 0;
}
