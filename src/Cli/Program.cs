using Trainer.Cli;

return CliApp.Run(args, Console.Out, Console.Error, liveProgress: !Console.IsOutputRedirected);
