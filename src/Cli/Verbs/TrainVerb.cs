using Trainer.Recipes.Runs;

namespace Trainer.Cli.Verbs;

public static class TrainVerb
{
    public const string Help = """
        trainer train [--config FILE | --recipe NAME] [--set KEY=VALUE]... [--out DIR] [--resume] [--device auto|cpu|cuda|cuda:N]
          Trains a model. With no --config: the embedded default (ResNet-20, the ResNet recipe, the
          small real CIFAR-10 sample shipped inside trainer; a few minutes on 2 CPU cores).
          --recipe    a paper's recipe by name ('trainer recipes'); point it at your data with
                      --set data.root=DIR; the run ends with a comparison against the paper
          --set       override any config key, dotted (train.epochs=10, optimizer.lr=0.05)
          --out       the run folder (default runs/<model>-<data>-<time>)
          --resume    continue the run in --out from checkpoints/last.ckpt (also after Ctrl-C)
        Ctrl-C or SIGTERM stops after the step under way, saves checkpoints/last.ckpt and prints how
        to resume (exit code 130, or 143 for SIGTERM); a second one quits at once. Bad numbers (a NaN
        or infinite loss or gradient) stop the run with exit code 3 (see train.on_nan).
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error, bool liveProgress)
    {
        var a = Arguments.Parse("train", args, ["config", "recipe", "set", "out", "device"], ["resume"]);
        if (a.Positionals.Count > 0) throw new Data.BadInputException($"'trainer train': unexpected argument '{a.Positionals[0]}'");
        using var signals = new StopSignals(error);
        var session = TrainingRun.Execute(new TrainRequest(a.Value("config"), a.Values("set"), a.Value("out"), a.Has("resume"), a.Value("device"), a.Value("recipe")),
            output, liveProgress, signals.Token);
        return session.Stopped ? signals.ExitCode : 0;
    }
}
