using Trainer.Data.ImageFolder;
using Trainer.Data.Transforms;
using Trainer.Models;
using Trainer.Models.Families;
using Trainer.Models.Layers;

namespace Trainer.Recipes.Config;

// The configuration of one run. YAML keys are these property names in snake_case
// (train.batch_size); defaults are the ResNet paper's recipe. Every key can be set on the
// command line with --set dotted.key=value.

public sealed record RunConfig
{
    public string Model { get; init; } = "resnet20";
    public ModelConfig ModelOptions { get; init; } = new();
    public DataConfig Data { get; init; } = new();
    public TrainConfig Train { get; init; } = new();
    public OptimizerConfig Optimizer { get; init; } = new();
    public ScheduleConfig Schedule { get; init; } = new();
    public RegularizationConfig Regularization { get; init; } = new();
    /// <summary>The paper a recipe follows and what it reported (empty for ad-hoc configs).</summary>
    public RecipeConfig Recipe { get; init; } = new();
    /// <summary>Start from weights trained elsewhere (transfer learning).</summary>
    public InitConfig Init { get; init; } = new();
    /// <summary>The classifier: linear (the family's own) or an MLP.</summary>
    public HeadConfig Head { get; init; } = new();
    /// <summary>Which layers train, at what rates, in one or two phases.</summary>
    public FinetuneConfig Finetune { get; init; } = new();
    public CheckpointConfig Checkpoint { get; init; } = new();
    public LogConfig Log { get; init; } = new();
    /// <summary>Used by `trainer study depth` only.</summary>
    public StudyConfig Study { get; init; } = new();
    public long Seed { get; init; } = 0;
    /// <summary>libtorch's deterministic algorithms (deterministic cuDNN; an error for an operation without one): see Engine/Determinism.</summary>
    public bool Deterministic { get; init; } = false;
    /// <summary>auto (CUDA when present), cpu, cuda or cuda:N.</summary>
    public string Device { get; init; } = "auto";
    /// <summary>CPU threads for TorchSharp; 0 keeps libtorch's default (all cores).</summary>
    public int Threads { get; init; } = 0;
}

public sealed record ModelConfig
{
    /// <summary>CIFAR ResNets: A (zero-padding, the paper's default) or B (projections).</summary>
    public Shortcut Shortcut { get; init; } = Shortcut.A;
    /// <summary>MobileNets: the width multiplier (alpha), 1.0 = the paper's base network.</summary>
    public double Width { get; init; } = 1.0;

    /// <summary>GoogLeNet: build the two auxiliary classifiers (their losses are added with train.aux_loss_weight).</summary>
    public bool Aux { get; init; } = false;

    /// <summary>Dropout before the classifier (AlexNet, VGG: in fc6/fc7; DenseNet: after each layer); empty: the family's own default.</summary>
    public double? Dropout { get; init; }

    /// <summary>Stochastic depth: the drop probability of the last residual block, rising linearly from 0 (EfficientNet, CIFAR ResNets); empty: the family's default.</summary>
    public double? StochasticDepth { get; init; }

    /// <summary>The model is the caller's own (Training.Model), not a registry model: only code that builds it again can resume, evaluate or export it.</summary>
    public bool Own { get; init; }

    /// <summary>Residual blocks start as the identity: the last BatchNorm's scale of each branch is zero (Goyal et al. 2017; torchvision's zero_init_residual).</summary>
    public bool ZeroInitResidual { get; init; }

    public ModelOptions ToOptions(int numClasses) => new(numClasses, Shortcut, Width, Aux, Dropout, StochasticDepth);
}

public sealed record DataConfig
{
    /// <summary>The data.name of an image folder (torchvision's ImageFolder layout).</summary>
    public const string ImageFolder = "imagefolder";
    /// <summary>The data.name of data given in code (Training.Data); data.root then names its source. Read as an image folder is (image_size, resize_size) when predicting.</summary>
    public const string Own = "own";

    /// <summary>cifar10, cifar100, cifar10-sample (the small real sample shipped inside trainer), or imagefolder (root/train/&lt;class&gt;/*.jpg).</summary>
    public string Name { get; init; } = "cifar10";
    /// <summary>The folder holding the data set (for CIFAR: the extracted folder or its parent); unused by cifar10-sample.</summary>
    public string Root { get; init; } = "";
    /// <summary>Use only the first N training images (0: all), for quick experiments and tests.</summary>
    public int Subset { get; init; } = 0;
    /// <summary>Validate on only N images spread evenly over the validation set (0: all), for quick checks.</summary>
    public int ValSubset { get; init; } = 0;
    /// <summary>Training images carved off as a validation split (the paper used 5000); 0 validates on the test set.</summary>
    public int ValSplit { get; init; } = 0;
    /// <summary>channel: per-channel statistics (measured on CIFAR's training images; ImageNet's for image folders); pixel_mean: CIFAR's mean image.</summary>
    public NormalizationMode Normalize { get; init; } = NormalizationMode.Channel;
    /// <summary>Training augmentation (CIFAR: pad-crop-flip; image folders: train_crop, flip and colour).</summary>
    public bool Augment { get; init; } = true;
    public int Padding { get; init; } = 4;

    // Image folders (data.name: imagefolder).
    /// <summary>Side of the network input: the training crop and the evaluation center crop.</summary>
    public int ImageSize { get; init; } = 224;
    /// <summary>Evaluation: the shorter side is resized to this before the center crop.</summary>
    public int ResizeSize { get; init; } = 256;
    /// <summary>random_resized (torchvision), scale (the ResNet paper's [256, 480] shorter side), or center.</summary>
    public TrainCrop TrainCrop { get; init; } = TrainCrop.RandomResized;
    /// <summary>RandomResizedCrop's area range and aspect-ratio range.</summary>
    public double[] Scale { get; init; } = [0.08, 1.0];
    public double[] Ratio { get; init; } = [3.0 / 4.0, 4.0 / 3.0];
    /// <summary>Scale augmentation's shorter-side range.</summary>
    public int[] ShortSide { get; init; } = [256, 480];
    public bool Flip { get; init; } = true;
    /// <summary>Brightness, contrast and saturation jitter (fb.resnet.torch uses 0.4; 0: off).</summary>
    public double ColorJitter { get; init; } = 0;
    /// <summary>AlexNet's PCA lighting noise standard deviation (0.1 in the papers; 0: off).</summary>
    public double Lighting { get; init; } = 0;
    /// <summary>Evaluate with the ResNet paper's 10 crops (corners, center, mirrored), logits averaged.</summary>
    public bool TenCrop { get; init; } = false;
    /// <summary>Threads that decode and augment batches ahead of training; 0: 2 on the CPU, more on a GPU (<see cref="WorkerThreads"/>).</summary>
    public int Workers { get; init; } = 0;

    /// <summary>
    /// The loader threads: <see cref="Workers"/> when set; else 2 on the CPU (the cores train) and,
    /// on a GPU, one fewer than the cores (2 to 8), since the GPU then waits on the CPU's batches.
    /// </summary>
    public int WorkerThreads(bool gpu) => Workers > 0 ? Workers : gpu ? Math.Clamp(Environment.ProcessorCount - 1, 2, 8) : 2;
    /// <summary>Drop the last, smaller training batch of an epoch (PyTorch's drop_last).</summary>
    public bool DropLast { get; init; } = false;
    /// <summary>Batches prepared ahead of the one training.</summary>
    public int Prefetch { get; init; } = 2;
    /// <summary>none, memory, or disk (uint8 files under cache_dir, default runs/.cache/images).</summary>
    public DecodeCache Cache { get; init; } = DecodeCache.None;
    public string CacheDir { get; init; } = "";
    /// <summary>Keep only these classes (folder names or names from the class-name file).</summary>
    public string[] Classes { get; init; } = [];
    /// <summary>Keep only the first K classes in sorted order (0: all).</summary>
    public int NumClasses { get; init; } = 0;
    /// <summary>At most N images per class (0: all).</summary>
    public int PerClass { get; init; } = 0;
    /// <summary>Share of each class held out for validation when the folder has no val split.</summary>
    public double ValFraction { get; init; } = 0.1;
    /// <summary>A "folder TAB name" file; empty: root/classes.txt when present.</summary>
    public string ClassNames { get; init; } = "";
    /// <summary>Check every image before training and leave out unreadable ones (reported), instead of stopping at the first.</summary>
    public bool SkipBadImages { get; init; } = false;
}

public sealed record TrainConfig
{
    public int Epochs { get; init; } = 90;
    public int BatchSize { get; init; } = 256;
    /// <summary>When above 0, training stops after this many iterations and wins over epochs.</summary>
    public int Iterations { get; init; } = 0;
    /// <summary>Weight of each auxiliary classifier's loss (GoogLeNet's paper: 0.3).</summary>
    public double AuxLossWeight { get; init; } = 0.3;
    /// <summary>Feed inputs in NHWC memory layout (faster convolutions on CPU; same maths).</summary>
    public bool ChannelsLast { get; init; } = true;
    /// <summary>Across ranks: BatchNorm normalises with the statistics of the whole global batch (SyncBatchNorm); false: each rank's own (DDP's default).</summary>
    public bool SyncBn { get; init; } = false;
    /// <summary>fp32, or mixed precision: bf16 or fp16 forward and backward with fp32 master weights and BatchNorm.</summary>
    public Precision Precision { get; init; } = Precision.Fp32;
    /// <summary>fp16: the initial dynamic loss scale.</summary>
    public double LossScale { get; init; } = 65536;
    /// <summary>fp16: good steps in a row after which the loss scale doubles (PyTorch's GradScaler: 2000).</summary>
    public int LossScaleGrowthInterval { get; init; } = Engine.MixedPrecision.DefaultGrowthInterval;
    /// <summary>A NaN or infinite loss or gradient: stop (last.ckpt keeps the last good state), or roll back to the last good state at a lower rate.</summary>
    public NanPolicy OnNan { get; init; } = NanPolicy.Stop;
    /// <summary>rollback: the learning rate is multiplied by this at each rollback (kept in checkpoints).</summary>
    public double NanLrFactor { get; init; } = 0.5;
    /// <summary>rollback: at most this many rollbacks in a run; the next bad step stops it.</summary>
    public int NanMaxRollbacks { get; init; } = 3;
}

/// <summary>What a bad number (NaN or infinity in the loss, the gradients or the weights) does to a run.</summary>
public enum NanPolicy { Stop, Rollback }

public sealed record OptimizerConfig
{
    /// <summary>sgd, rmsprop, adam or adamw.</summary>
    public string Name { get; init; } = "sgd";
    public double Lr { get; init; } = 0.1;
    /// <summary>SGD's and RMSprop's momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    public double Dampening { get; init; } = 0;
    /// <summary>L2 penalty added to the gradient (sgd, rmsprop, adam); adamw shrinks the weights directly.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    public bool Nesterov { get; init; } = false;
    /// <summary>Exempt BatchNorm and bias parameters from weight decay.</summary>
    public bool NoDecayBnBias { get; init; } = false;
    /// <summary>RMSprop's decay of the squared-gradient average (torch's alpha; the papers' "decay" 0.9).</summary>
    public double Alpha { get; init; } = 0.99;
    /// <summary>RMSprop's and Adam's epsilon.</summary>
    public double Eps { get; init; } = 1e-8;
    /// <summary>RMSprop in TensorFlow's form (eps inside the square root, the average starting at 1), as the MobileNet and EfficientNet papers ran it.</summary>
    public bool TfStyle { get; init; } = false;
    /// <summary>Adam's beta1 and beta2.</summary>
    public double[] Betas { get; init; } = [0.9, 0.999];
    /// <summary>Clip the gradients' global 2-norm to this before each update (0: off).</summary>
    public double ClipGradNorm { get; init; } = 0;
    /// <summary>The linear scaling rule: lr is the rate for this batch size and scales with train.batch_size (0: off).</summary>
    public int ReferenceBatch { get; init; } = 0;
    /// <summary>Shorthand for reference_batch 256 (Goyal et al.'s rule).</summary>
    public bool ScaleLrByBatch { get; init; } = false;

    /// <summary>The learning rate a run starts from, after the optional batch scaling.</summary>
    public double StartLr(int batchSize)
    {
        int reference = ReferenceBatch > 0 ? ReferenceBatch : ScaleLrByBatch ? 256 : 0;
        return reference > 0 ? Lr * batchSize / reference : Lr;
    }
}

public sealed record ScheduleConfig
{
    /// <summary>plateau, multistep, step, exponential, cosine, poly or constant.</summary>
    public string Name { get; init; } = "plateau";
    /// <summary>Milestones, step_size, exponential decay and the cosine/poly length count epochs or iterations.</summary>
    public ScheduleUnit Unit { get; init; } = ScheduleUnit.Epochs;
    /// <summary>The multiplier of step, multistep, plateau and exponential (per unit) schedules.</summary>
    public double Factor { get; init; } = 0.1;
    public int[] Milestones { get; init; } = [];
    public int StepSize { get; init; } = 30;
    /// <summary>poly: lr = base * (1 - t/T)^power (down to min_lr).</summary>
    public double Power { get; init; } = 1.0;
    // ReduceLROnPlateau, with PyTorch's defaults.
    public string Monitor { get; init; } = "val_loss";
    public int Patience { get; init; } = 10;
    public double Threshold { get; init; } = 1e-4;
    public ThresholdMode ThresholdMode { get; init; } = ThresholdMode.Rel;
    public int Cooldown { get; init; } = 0;
    /// <summary>plateau: the floor; cosine and poly: the final rate.</summary>
    public double MinLr { get; init; } = 0;
    public double Eps { get; init; } = 1e-8;
    /// <summary>Linear warmup over the first N iterations, from warmup_lr to the schedule's rate (0: none).</summary>
    public int WarmupIterations { get; init; } = 0;
    /// <summary>The same warmup counted in epochs (converted to iterations; 0: none).</summary>
    public double WarmupEpochs { get; init; } = 0;
    public double WarmupLr { get; init; } = 0.01;
    /// <summary>The ResNet paper's CIFAR-110 trick: hold warmup_lr until the training error (mean of the last 20 batches) falls below this, then follow the schedule (0: off).</summary>
    public double WarmupUntilError { get; init; } = 0;
}

public sealed record RegularizationConfig
{
    /// <summary>Cross-entropy against (1 - e) one-hot + e uniform targets (Szegedy et al. 2016; 0: off).</summary>
    public double LabelSmoothing { get; init; } = 0;
    /// <summary>mixup (Zhang et al. 2018): blend two images and their labels with lambda ~ Beta(a, a) (0: off).</summary>
    public double MixupAlpha { get; init; } = 0;
    /// <summary>CutMix (Yun et al. 2019): paste a box of another image, labels weighted by area, lambda ~ Beta(a, a) (0: off).</summary>
    public double CutmixAlpha { get; init; } = 0;
    /// <summary>Share of batches mixed when mixup or CutMix is on (with both on, each mixed batch picks one at random).</summary>
    public double MixProb { get; init; } = 1.0;
    /// <summary>Exponential moving average of the weights, evaluated beside the model each epoch (e.g. 0.9999; 0: off).</summary>
    public double EmaDecay { get; init; } = 0;
}

/// <summary>A paper's recipe: where it comes from and what the paper reported for it.</summary>
public sealed record RecipeConfig
{
    /// <summary>The recipe's name (trainer recipes, train --recipe).</summary>
    public string Name { get; init; } = "";
    /// <summary>Authors, year and title.</summary>
    public string Paper { get; init; } = "";
    /// <summary>Where in the paper the recipe and figure are given.</summary>
    public string Section { get; init; } = "";
    /// <summary>The data set the paper trained and reported on.</summary>
    public string Dataset { get; init; } = "";
    /// <summary>The paper's top-1 error for this setting, as a fraction (0.0875 for 8.75%).</summary>
    public double? ReportedTop1Error { get; init; }
    /// <summary>The paper's top-5 error, where it gives one.</summary>
    public double? ReportedTop5Error { get; init; }
    /// <summary>How the paper measured it (single crop, 10-crop, test set).</summary>
    public string Evaluation { get; init; } = "";
}

public enum ScheduleUnit { Epochs, Iterations }

/// <summary>Arithmetic of the forward and backward passes.</summary>
public enum Precision { Fp32, Bf16, Fp16 }

public enum ThresholdMode { Rel, Abs }

public sealed record CheckpointConfig
{
    /// <summary>How often last.ckpt is written, in epochs (the final epoch is always written).</summary>
    public int EveryEpochs { get; init; } = 1;
    /// <summary>Also write last.ckpt every N optimizer steps inside an epoch, so a crash loses at most N steps (0: off).</summary>
    public int EverySteps { get; init; } = 0;

    /// <summary>True when a mid-epoch last.ckpt is due after optimizer step <paramref name="step"/> (1-based).</summary>
    public bool DueAfterStep(long step) => EverySteps > 0 && step % EverySteps == 0;
}

public sealed record StudyConfig
{
    /// <summary>CIFAR depths (6n+2) to train, each as a plain and a residual net.</summary>
    public int[] Depths { get; init; } = [20, 32, 44, 56];
}

public sealed record LogConfig
{
    /// <summary>Weight histograms in TensorBoard each epoch.</summary>
    public bool Histograms { get; init; } = true;
    /// <summary>A grid of augmented training images in TensorBoard, once.</summary>
    public bool ImageGrid { get; init; } = true;
    /// <summary>Console progress bars; off prints only the per-epoch summary line.</summary>
    public bool Progress { get; init; } = true;
    /// <summary>Every N iterations, log the training loss and accuracy of those N batches to iterations.csv and TensorBoard (0: off).</summary>
    public int EveryIterations { get; init; } = 0;
}

public sealed record InitConfig
{
    /// <summary>A weights file to start from: a trainer checkpoint (e.g. from trainer import), a PyTorch .pth/.pt state_dict, .safetensors, or an ONNX ResNet; empty: random init.</summary>
    public string Weights { get; init; } = "";
    /// <summary>State-dict key prefixes not loaded from it; "head" stands for the model's classifier, which is then freshly initialised for the run's classes.</summary>
    public string[] Skip { get; init; } = ["head"];
}

public enum HeadType { Linear, Mlp }

public sealed record HeadConfig
{
    /// <summary>linear: one layer (the family's classifier); mlp: Linear(features, hidden), ReLU, Dropout, Linear(hidden, classes).</summary>
    public HeadType Type { get; init; } = HeadType.Linear;
    /// <summary>MLP head: hidden width.</summary>
    public int Hidden { get; init; } = 512;
    /// <summary>MLP head: dropout before the last layer.</summary>
    public double Dropout { get; init; } = 0.5;
}

/// <summary>all: every layer trains; head: only the classifier; last_stages: the classifier and the last finetune.stages stages.</summary>
public enum TrainableLayers { All, Head, LastStages }

public sealed record FinetuneConfig
{
    public TrainableLayers Train { get; init; } = TrainableLayers.All;
    /// <summary>last_stages: how many stages, counted from the end (ResNets: layer4 is the last, the stem the first).</summary>
    public int Stages { get; init; } = 1;
    /// <summary>Frozen BatchNorm layers keep their running statistics (eval mode); true lets them update with each batch.</summary>
    public bool UpdateFrozenBn { get; init; } = false;
    /// <summary>Learning-rate multiplier of the pretrained layers that train (discriminative rates; the head gets 1).</summary>
    public double BackboneLr { get; init; } = 1.0;
    /// <summary>Two phases: the first N epochs train the head only, then finetune.train takes over at the rate times phase2_lr (0: one phase).</summary>
    public int HeadEpochs { get; init; } = 0;
    /// <summary>Multiplier of the schedule's rate in the second phase.</summary>
    public double Phase2Lr { get; init; } = 0.1;

    /// <summary>Anything other than "everything trains at one rate from the start".</summary>
    public bool Active => Train != TrainableLayers.All || HeadEpochs > 0 || BackboneLr != 1.0;
}
