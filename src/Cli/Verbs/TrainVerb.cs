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
          --resume    continue the run in --out from checkpoints/last.ckpt
        """;

    public static int Run(string[] args, TextWriter output, bool liveProgress)
    {
        var a = Arguments.Parse("train", args, ["config", "recipe", "set", "out", "device"], ["resume"]);
        if (a.Positionals.Count > 0) throw new Data.BadInputException($"'trainer train': unexpected argument '{a.Positionals[0]}'");
        TrainingRun.Execute(new TrainRequest(a.Value("config"), a.Values("set"), a.Value("out"), a.Has("resume"), a.Value("device"), a.Value("recipe")), output, liveProgress);
        return 0;
    }
}
