using Trainer.Recipes.Distributed;
using Trainer.Recipes.Studies;

namespace Trainer.Cli.Verbs;

public static class StudyVerb
{
    public const string Help = """
        trainer study depth [--config FILE] [--set KEY=VALUE]... [--out DIR] [--nproc N]
          The ResNet paper's degradation experiment: plain and residual CIFAR nets over study.depths
          (default 20, 32, 44, 56), same recipe, seed and data, one run folder each in the study
          folder; then figure.png, curves.csv and table.md. Rerunning skips finished runs and resumes
          an interrupted one. Without --config: configs/degradation-smoke.yaml (a quick first look).
          Presets: configs/degradation-cifar10.yaml (the paper), configs/degradation-cifar10-cpu.yaml.
          Ctrl-C or SIGTERM stops the run under way after its current step (saved) and prints how to
          continue the study (exit code 130, or 143 for SIGTERM).
          --nproc N trains each net on N ranks of this machine (as train --nproc).
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error, bool liveProgress)
    {
        var a = Arguments.Parse("study", args, ["config", "set", "out", "nproc"], []);
        if (a.Positionals is not ["depth"])
            throw new Data.BadInputException("usage: trainer study depth [--config FILE] [--set KEY=VALUE]... [--out DIR] [--nproc N]");
        if (a.Value("nproc") is not null)
        {
            int ranks = a.IntValue("study", "nproc", 1);
            if (World.LaunchedByMpi) throw new Data.BadInputException("'trainer study': --nproc starts its own ranks; under mpirun leave it out");
            if (ranks > 1)
            {
                DepthStudy.CheckBeforeLaunch(a.Value("config"), a.Values("set"), ranks);
                var folder = a.Value("out") ?? DepthStudy.DefaultFolder();
                var rankArguments = new List<string> { "depth" };
                if (a.Value("config") is { } path) rankArguments.AddRange(["--config", path]);
                foreach (var setting in a.Values("set")) rankArguments.AddRange(["--set", setting]);
                rankArguments.AddRange(["--out", folder]);
                return MpiLauncher.Run("study", rankArguments, ranks, null, output, error);
            }
        }
        bool quiet = World.LaunchRank != 0 || Environment.GetEnvironmentVariable(MpiLauncher.LaunchedVariable) == "1";
        using var signals = new StopSignals(quiet ? TextWriter.Null : error);
        var study = DepthStudy.Execute(a.Value("config"), a.Values("set"), a.Value("out"), output, liveProgress && !World.LaunchedByMpi, signals.Token);
        World.Finish();
        return study.Stopped ? signals.ExitCode : 0;
    }
}
