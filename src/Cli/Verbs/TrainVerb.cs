using Trainer.Recipes.Distributed;

namespace Trainer.Cli.Verbs;

public static class TrainVerb
{
    public const string Help = """
        trainer train [--config FILE | --recipe NAME] [--set KEY=VALUE]... [--out DIR] [--resume] [--device auto|cpu|cuda|cuda:N] [--nproc N]
          Trains a model. With no --config: the embedded default (ResNet-20, the ResNet recipe, the
          small real CIFAR-10 sample shipped inside trainer; a few minutes on 2 CPU cores).
          --recipe    a paper's recipe by name ('trainer recipes'); point it at your data with
                      --set data.root=DIR; the run ends with a comparison against the paper
          --set       override any config key, dotted (train.epochs=10, optimizer.lr=0.05)
          --out       the run folder (default runs/<model>-<data>-<time>)
          --resume    continue the run in --out from checkpoints/last.ckpt (also after Ctrl-C)
          --nproc     train on N ranks of this machine (data-parallel, Open MPI's mpirun); the config's
                      train.batch_size is the global batch, split evenly; across machines run
                      'mpirun -np N -H a:4,b:4 trainer train ...' (docs/distributed.md)
        Ctrl-C or SIGTERM stops after the step under way, saves checkpoints/last.ckpt and prints how
        to resume (exit code 130, or 143 for SIGTERM); a second one quits at once. Bad numbers (a NaN
        or infinite loss or gradient) stop the run with exit code 3 (see train.on_nan).
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error, bool liveProgress)
    {
        var a = Arguments.Parse("train", args, ["config", "recipe", "set", "out", "device", "nproc"], ["resume"]);
        if (a.Positionals.Count > 0) throw new Data.BadInputException($"'trainer train': unexpected argument '{a.Positionals[0]}'");
        int ranks = 1;
        if (a.Value("nproc") is not null)
        {
            ranks = a.IntValue("train", "nproc", 1);
            if (World.LaunchedByMpi)
                throw new Data.BadInputException("'trainer train': --nproc starts its own ranks; under mpirun leave it out (mpirun -np sets the ranks)");
        }
        var training = Training(a);
        if (ranks > 1)
        {
            var folder = training.CheckBeforeLaunch(ranks);
            return MpiLauncher.Run("train", RankArguments(a, folder), ranks, folder, output, error);
        }
        // A rank started by `--nproc` leaves the console to its launcher; other ranks than 0 never write to it.
        bool quiet = World.LaunchRank != 0 || Environment.GetEnvironmentVariable(MpiLauncher.LaunchedVariable) == "1";
        using var signals = new StopSignals(quiet ? TextWriter.Null : error);
        training.Output = output;
        training.LiveProgress = liveProgress && !World.LaunchedByMpi;
        var session = training.Run(signals.Token);
        World.Finish();
        return session.Stopped ? signals.ExitCode : 0;
    }

    /// <summary>The run the arguments ask for: a fresh one of --config or --recipe (or the embedded default), or the one in --out resumed.</summary>
    static Recipes.Training Training(Arguments a)
    {
        string[] overrides = a.Value("device") is { } device ? [.. a.Values("set"), $"device={device}"] : [.. a.Values("set")];
        if (a.Has("resume"))
        {
            if (a.Value("out") is not { } folder) throw new Data.BadInputException("--resume needs --out RUN_FOLDER (the run to continue)");
            var resumed = Recipes.Training.Resume(folder, overrides);
            resumed.SameModelAs = a.Value("config");
            return resumed;
        }
        if (a.Value("recipe") is not null && a.Value("config") is not null) throw new Data.BadInputException("give either --recipe or --config, not both");
        var config = a.Value("recipe") is { } recipe ? Recipes.Training.Recipe(recipe, overrides)
            : a.Value("config") is { } path ? Recipes.Training.ConfigFile(path, overrides)
            : Recipes.Training.DefaultRecipe(overrides);
        return new Recipes.Training(config) { OutDir = a.Value("out") };
    }

    /// <summary>The command line each rank runs: this one without --nproc, with the run folder named.</summary>
    static List<string> RankArguments(Arguments a, string folder)
    {
        var list = new List<string>();
        if (a.Value("config") is { } config) list.AddRange(["--config", config]);
        if (a.Value("recipe") is { } recipe) list.AddRange(["--recipe", recipe]);
        foreach (var setting in a.Values("set")) list.AddRange(["--set", setting]);
        list.AddRange(["--out", folder]);
        if (a.Value("device") is { } device) list.AddRange(["--device", device]);
        if (a.Has("resume")) list.Add("--resume");
        return list;
    }
}
