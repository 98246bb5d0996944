using Trainer.Recipes.Studies;

namespace Trainer.Cli.Verbs;

public static class StudyVerb
{
    public const string Help = """
        trainer study depth [--config FILE] [--set KEY=VALUE]... [--out DIR]
          The ResNet paper's degradation experiment: plain and residual CIFAR nets over study.depths
          (default 20, 32, 44, 56), same recipe, seed and data, one run folder each in the study
          folder; then figure.png, curves.csv and table.md. Rerunning skips finished runs and resumes
          an interrupted one. Without --config: configs/degradation-smoke.yaml (a quick first look).
          Presets: configs/degradation-cifar10.yaml (the paper), configs/degradation-cifar10-cpu.yaml.
          Ctrl-C or SIGTERM stops the run under way after its current step (saved) and prints how to
          continue the study (exit code 130, or 143 for SIGTERM).
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error, bool liveProgress)
    {
        var a = Arguments.Parse("study", args, ["config", "set", "out"], []);
        if (a.Positionals is not ["depth"])
            throw new Data.BadInputException("usage: trainer study depth [--config FILE] [--set KEY=VALUE]... [--out DIR]");
        using var signals = new StopSignals(error);
        var study = DepthStudy.Execute(a.Value("config"), a.Values("set"), a.Value("out"), output, liveProgress, signals.Token);
        return study.Stopped ? signals.ExitCode : 0;
    }
}
