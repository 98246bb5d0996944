using Trainer.Cli.Verbs;
using Trainer.Data;
using Trainer.Data.Cifar;

namespace Trainer.Cli;

/// <summary>
/// The `trainer` command: picks the verb and turns failures into exit codes. Bad input, and a
/// disk that filled up, is one line on stderr and exit code 2; training that diverged (NaN or
/// infinite numbers) is one line and exit code 3; a run stopped by Ctrl-C or SIGTERM exits 130 or
/// 143 (the verb decides); anything else is an internal error, exit code 1 (set TRAINER_DEBUG=1
/// for the stack trace). A rank of a data-parallel job names itself in that line and ends the
/// whole job with its exit code (MPI_Abort), so no other rank waits forever in a collective.
/// </summary>
public static class CliApp
{
    const string Usage = """
        usage: trainer <verb> [options]
          train     train a model (no options: the embedded default run)
          eval      evaluate a checkpoint
          import    weights from PyTorch, safetensors or ONNX into a checkpoint
          export    a checkpoint's weights as a PyTorch state_dict
          predict   top-5 classes of every image in a folder, from a checkpoint
          models    list the registered models
          recipes   list the paper recipes (configs/) with the figures the papers reported
          summary   per-layer output size, parameters, multiply-accumulates and memory of a model
          data      download a data set, or inspect an image folder
          bench     images/s of the input pipeline
          study     the degradation study (plain vs residual nets over depth)
        'trainer <verb> --help' describes a verb.
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error, bool liveProgress = false)
    {
        try
        {
            Models.Native.NativeRuntime.Configure();
            if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
            {
                output.WriteLine(Usage);
                return args.Length == 0 ? 2 : 0;
            }
            var (verb, rest) = (args[0], args[1..]);
            if (rest.Contains("--help") || rest.Contains("-h"))
            {
                output.WriteLine(HelpFor(verb));
                return 0;
            }
            return verb switch
            {
                "train" => TrainVerb.Run(rest, output, error, liveProgress),
                "eval" => EvalVerb.Run(rest, output),
                "import" => ImportVerb.Run(rest, output),
                "export" => ExportVerb.Run(rest, output),
                "predict" => PredictVerb.Run(rest, output),
                "models" => ModelsVerb.Run(rest, output),
                "recipes" => RecipesVerb.Run(rest, output),
                "summary" => SummaryVerb.Run(rest, output),
                "data" => DataVerb.Run(rest, output),
                "study" => StudyVerb.Run(rest, output, error, liveProgress),
                "bench" => BenchVerb.Run(rest, output),
                _ => throw new BadInputException($"unknown verb '{verb}' (train, eval, predict, import, export, models, recipes, summary, data, study, bench)"),
            };
        }
        catch (BadInputException e)
        {
            return Fail(error, $"error: {e.Message}", 2);
        }
        catch (Recipes.Storage.DiskFullException e)
        {
            // The user's environment, not trainer: like bad input, one line and exit code 2.
            return Fail(error, $"error: {e.Message}", 2);
        }
        catch (Recipes.Engine.TrainingDivergedException e)
        {
            return Fail(error, $"error: {e.Message}", 3);
        }
        catch (DownloadUnavailableException e)
        {
            error.WriteLine($"trainer: {e.Message}");
            return 1;
        }
        catch (Exception e)
        {
            return Fail(error, $"internal error: {e.GetType().Name}: {e.Message}", 1, Environment.GetEnvironmentVariable("TRAINER_DEBUG") == "1" ? e : null);
        }
    }

    /// <summary>The failure's one line (naming the rank in a job of several), then its exit code; a rank ends the whole job.</summary>
    static int Fail(TextWriter error, string line, int code, Exception? stackTrace = null)
    {
        var world = Recipes.Distributed.World.LaunchedByMpi ? $"rank {Recipes.Distributed.World.LaunchRank}: " : "";
        error.WriteLine($"trainer: {world}{line}");
        if (stackTrace is not null) error.WriteLine(stackTrace);
        error.Flush();
        Recipes.Distributed.World.AbortIfStarted(code);
        return code;
    }

    static string HelpFor(string verb) => verb switch
    {
        "train" => TrainVerb.Help,
        "eval" => EvalVerb.Help,
        "import" => ImportVerb.Help,
        "export" => ExportVerb.Help,
        "predict" => PredictVerb.Help,
        "models" => ModelsVerb.Help,
        "recipes" => RecipesVerb.Help,
        "summary" => SummaryVerb.Help,
        "data" => DataVerb.Help,
        "study" => StudyVerb.Help,
        "bench" => BenchVerb.Help,
        _ => Usage,
    };
}
