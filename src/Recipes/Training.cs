using Trainer.Data;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Reproduction;
using Trainer.Recipes.Runs;
using Trainer.Recipes.Sinks;
using static TorchSharp.torch;

namespace Trainer.Recipes;

/// <summary>
/// One training run from code, the way `trainer train` runs it (the CLI is built on this class):
/// a recipe (<see cref="RunConfig"/>), a model (a registry model named by the config, or your own
/// module), data (the config's, or your own), and sinks beside the built-in ones. The run folder
/// gets the same files: config.yaml, metrics.csv, TensorBoard events, checkpoints that resume
/// exactly, summary.json with the reproduction report.
/// <code>
/// var config = Training.DefaultRecipe("train.epochs=2");
/// var run = new Training(config) { OutDir = "runs/mine", ModelName = "my_cnn", Model = classes => new MyCnn(classes) };
/// TrainingSession session = run.Run();
/// </code>
/// Bad input (a config key, data whose labels are out of range, a model that does not return one
/// logit a class) is a <see cref="BadInputException"/> with one line naming it, before anything is
/// written; a sink of yours that throws ends the run with a <see cref="CallbackFailedException"/>
/// naming it, the epochs already saved kept.
/// </summary>
public sealed class Training
{
    readonly RunConfig? _config;
    readonly IReadOnlyList<string> _resumeOverrides = [];

    /// <summary>The embedded default: the ResNet recipe (SGD momentum 0.9, lr 0.1, weight decay 1e-4) with ResNet-20 on the CIFAR-10 sample shipped inside Trainer; <paramref name="overrides"/> are dotted <c>key=value</c> settings (as `--set`).</summary>
    public static RunConfig DefaultRecipe(params string[] overrides) => ConfigLoader.Load(null, overrides);

    /// <summary>A paper's recipe by name (`trainer recipes` lists them, e.g. resnet56-cifar10); point it at your data with <c>data.root=DIR</c>.</summary>
    public static RunConfig Recipe(string name, params string[] overrides) =>
        ConfigLoader.Load(null, overrides, embedded: RecipeCatalog.Get(name).Name + ".yaml");

    /// <summary>A config file (any of configs/, or your own YAML).</summary>
    public static RunConfig ConfigFile(string path, params string[] overrides) => ConfigLoader.Load(path, overrides);

    /// <summary>A new run of <paramref name="config"/>; its folder must not hold a run yet.</summary>
    public Training(RunConfig config) => _config = config;

    Training(string runFolder, IReadOnlyList<string> overrides)
    {
        OutDir = runFolder;
        _resumeOverrides = overrides;
    }

    /// <summary>
    /// Continues the run in <paramref name="runFolder"/> from its last checkpoint with the config it
    /// started with (its config.yaml); <paramref name="overrides"/> go on top (train.epochs=M trains it
    /// longer). A model or data of your own must be given again, as they were.
    /// </summary>
    public static Training Resume(string runFolder, params string[] overrides) => new(runFolder, overrides);

    /// <summary>The run folder; empty: runs/&lt;model&gt;-&lt;data&gt;-&lt;time&gt; (see <see cref="Folder"/> once run).</summary>
    public string? OutDir { get; set; }

    /// <summary>Your own model: a fresh module for the number of classes, returning (batch, classes) logits. Called once, or twice more for train.precision bf16/fp16 and regularization.ema_decay (a twin of the same shape). Empty: the config's registry model.</summary>
    public Func<int, nn.Module<Tensor, Tensor>>? Model { get; set; }

    /// <summary>The name of your own <see cref="Model"/>, kept in config.yaml, checkpoints and the summary (ignored on resume: the run's own).</summary>
    public string? ModelName { get; set; }

    /// <summary>Your own data: an <see cref="ImageDataset"/> (decoded, in memory), an <see cref="IEncodedImages"/>, or an image folder. Empty: the config's data.</summary>
    public RunData? Data { get; set; }

    /// <summary>Sinks of your own, told of every batch and epoch after the built-in ones (console, CSV, TensorBoard, checkpoints, summary). They run in the process that writes the run folder (rank 0).</summary>
    public List<TrainingSink> Sinks { get; } = [];

    /// <summary>Where the console lines go.</summary>
    public TextWriter Output { get; set; } = Console.Out;

    /// <summary>A progress bar redrawn in place (a terminal); otherwise a line an epoch.</summary>
    public bool LiveProgress { get; set; }

    /// <summary>On resume only: a config file whose model must be the run's (what `trainer train --config F --resume` checks).</summary>
    public string? SameModelAs { get; set; }

    /// <summary>The run folder this run writes: <see cref="OutDir"/>, or the default chosen when first asked.</summary>
    public string Folder => _config is null ? Resumed.OutDir : FolderFor(ResolvedConfig()).Root;
    string? _folder;

    /// <summary>The folder of a fresh run of <paramref name="config"/>; a default one is chosen once, so a check and the run agree.</summary>
    RunFolder FolderFor(RunConfig config) => new(_folder ??= OutDir ?? RunFolder.Default(config.Model, config.Data.Name).Root);

    /// <summary>
    /// Trains until the config's length (or a sink's <see cref="TrainingSession.EndAfterThisEpoch"/>,
    /// or <paramref name="stop"/>: then after the step under way, with checkpoints/last.ckpt saved and
    /// <c>Stopped</c> set on the session; <see cref="Resume"/> continues it).
    /// </summary>
    public TrainingSession Run(CancellationToken stop = default)
    {
        Models.Native.NativeRuntime.Configure();
        var parts = new RunParts(Model, Data, [.. Sinks]);
        if (_config is null) return TrainingRun.Resume(Resumed, Output, LiveProgress, stop, parts);
        var config = ResolvedConfig();
        return TrainingRun.Start(config, FolderFor(config), Output, LiveProgress, stop, parts);
    }

    /// <summary>What `trainer train --nproc N` checks before it starts N processes: the config, the run folder, a global batch that splits over them. Returns the run folder.</summary>
    public string CheckBeforeLaunch(int ranks)
    {
        if (_config is null) return TrainingRun.CheckBeforeLaunch(Resumed, new RunParts(Model, Data, []), ranks);
        var config = ResolvedConfig();
        return TrainingRun.CheckBeforeLaunch(config, FolderFor(config), ranks);
    }

    /// <summary>What a resumed run continues: its folder, the settings on top, the model cross-check.</summary>
    ResumeRequest Resumed => new(OutDir ?? throw new BadInputException("a resumed run needs its folder: Training.OutDir is empty"), _resumeOverrides, SameModelAs);

    /// <summary>
    /// The config as the run folder records it: a model of your own is marked (model_options.own)
    /// and so is data given in code (data.name own, data.root its source; decoded images of one
    /// size set data.image_size to it, the size a prediction resizes to), then checked as a config
    /// file is.
    /// </summary>
    RunConfig ResolvedConfig()
    {
        if (_config is null) throw new InvalidOperationException("a resumed run's config is the run folder's");
        var config = _config;
        if (Model is not null)
        {
            if (string.IsNullOrWhiteSpace(ModelName)) throw new BadInputException("Training.ModelName must name your own model (it goes into config.yaml, checkpoints and the summary)");
            config = config with { Model = ModelName, ModelOptions = config.ModelOptions with { Own = true } };
        }
        else if (config.ModelOptions.Own) throw new BadInputException($"the config marks {config.Model} as a model of your own (model_options.own): give it as Training.Model");
        if (Data is not null)
        {
            var data = config.Data with { Name = DataConfig.Own, Root = Data.Train.Source };
            if (Data.Train is ImageDataset pixels) data = data with { ImageSize = pixels.Height, ResizeSize = pixels.Height };
            config = config with { Data = data };
        }
        else if (config.Data.Name == DataConfig.Own) throw new BadInputException($"the config's data is data given in code (data.name own): give it as Training.Data");
        ConfigLoader.Validate(config, "the config given to Training");
        return config;
    }
}
