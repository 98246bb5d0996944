using Trainer.Cli;
using Xunit;

// Every test drives TorchSharp on both cores; running them one at a time is faster and keeps
// process-wide counters (live tensors) meaningful.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Trainer.Tests;

public static class TestPaths
{
    /// <summary>The checkout's root (the folder with Trainer.sln), found from the test binary.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>../shared/data beside the checkout: real CIFAR-10 and Imagenette (see its README).</summary>
    public static string SharedData
    {
        get
        {
            var path = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data"));
            Assert.True(Directory.Exists(path), $"the shared data folder {path} is missing (see README, 'Tests')");
            return path;
        }
    }

    public static string SharedCifar10 => Path.Combine(SharedData, "cifar10");

    static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Trainer.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Trainer.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A temporary folder removed after the test.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("trainer-test-").FullName;
    public string this[string relative] => System.IO.Path.Combine(Path, relative);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>The process's managed garbage, for tests that read process-wide state (live tensors, the tensor block cache).</summary>
public static class Garbage
{
    /// <summary>
    /// Collects and runs the finalizers until a round frees no more tensors; returns the live tensor
    /// count then. A tensor an earlier test dropped without disposing is freed by its finalizer, on
    /// the finalizer's thread, whenever a collection happens to find it: without this it could move a
    /// process-wide count, or put a block into the tensor cache, in the middle of a test.
    /// </summary>
    public static long Settle()
    {
        long count = TorchSharp.torch.Tensor.TotalCount;
        for (int round = 1; ; round++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long now = TorchSharp.torch.Tensor.TotalCount;
            if (now == count && round >= 2) return now;
            Assert.True(round < 20, "finalizers still freed tensors after 20 collections");
            count = now;
        }
    }
}

/// <summary>Runs the trainer command in-process and captures what it prints.</summary>
public static class Cli
{
    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    public static Result Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return new Result(code, output.ToString(), error.ToString());
    }
}

/// <summary>Another program (dotnet, an installed tool, an example) run to its end.</summary>
public static class Command
{
    /// <summary>Runs a command to its end (both streams read as they come) and returns its output; fails the test with both unless it exits 0.</summary>
    public static string Run(string file, string[] args, string workingDirectory)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file, args) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = System.Diagnostics.Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{Path.GetFileName(file)} {string.Join(" ", args)} exited {process.ExitCode}: {stdout.Result}{stderr.Result}");
        return stdout.Result;
    }
}

/// <summary>Debian's python3 (with python3-torch) for reference computations.</summary>
public static class Python
{
    /// <summary>Runs tests/Trainer.Tests/<paramref name="script"/> with <paramref name="args"/>; fails the test with its output unless it exits 0.</summary>
    public static string Run(string script, params string[] args)
    {
        var path = System.IO.Path.Combine(TestPaths.RepoRoot, "tests", "Trainer.Tests", script);
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3", [path, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = System.Diagnostics.Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{script} failed (is python3-torch installed? scripts/test.sh installs it): {output}{stderr.Result}");
        return output;
    }
}
