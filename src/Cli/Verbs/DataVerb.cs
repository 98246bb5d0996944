using Trainer.Data;
using Trainer.Data.Cifar;

namespace Trainer.Cli.Verbs;

public static class DataVerb
{
    public const string Help = """
        trainer data download cifar10|cifar100 [--dir DIR] [--url URL]
          Fetches the official binary archive, verifies its MD5 and extracts it into DIR
          (default data/cifar10 or data/cifar100). --url fetches the same archive from a mirror.
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("data", args, ["dir", "url"], []);
        if (a.Positionals.Count != 2 || a.Positionals[0] != "download")
            throw new BadInputException("usage: trainer data download cifar10|cifar100 [--dir DIR]");
        var format = CifarFormat.ByName(a.Positionals[1]);
        var official = CifarDownloader.OfficialArchive(format);
        var archive = a.Value("url") is { } url ? official with { Url = url } : official;
        CifarDownloader.Download(format, a.Value("dir") ?? Path.Combine("data", format.Name), archive, output);
        return 0;
    }
}
