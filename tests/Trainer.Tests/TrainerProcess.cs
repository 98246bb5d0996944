using System.Diagnostics;
using Xunit;

namespace Trainer.Tests;

/// <summary>The real trainer binary (trainer.dll beside the tests, via the project reference) as a child process that a test can kill or signal.</summary>
public sealed class TrainerProcess : IDisposable
{
    /// <summary>
    /// A tiny run: 96 images in batches of 16 (6 steps an epoch), 2 epochs, a mid-epoch checkpoint
    /// every 2 steps, a row of iterations.csv per step. Stochastic depth draws from torch's
    /// generator every step, so a resume that did not restore it exactly would end elsewhere.
    /// </summary>
    public static readonly string[] TinyRun =
    [
        "data.subset=96", "train.batch_size=16", "train.epochs=2", "data.val_subset=32", "checkpoint.every_steps=2",
        "log.histograms=false", "log.image_grid=false", "log.progress=false", "log.every_iterations=1",
        "model_options.stochastic_depth=0.2",
    ];

    readonly Process _process;
    readonly Task<string> _output, _error;

    public TrainerProcess(params string[] args) : this(new Dictionary<string, string>(), args) { }

    /// <summary>With <paramref name="environment"/> added to the child's environment.</summary>
    public TrainerProcess(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "trainer.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing");
        var psi = new ProcessStartInfo("dotnet", [dll, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        _process = Process.Start(psi)!;
        _output = _process.StandardOutput.ReadToEndAsync();
        _error = _process.StandardError.ReadToEndAsync();
    }

    /// <summary>`trainer train --out DIR` with the tiny run's settings.</summary>
    public static TrainerProcess Train(string runFolder) =>
        new(["train", "--out", runFolder, .. TinyRun.SelectMany(s => new[] { "--set", s })]);

    public static TrainerProcess Resume(string runFolder) => new("train", "--out", runFolder, "--resume");

    /// <summary>Waits until iterations.csv in <paramref name="runFolder"/> has at least <paramref name="steps"/> rows; fails the test if the process ends first.</summary>
    public void WaitForSteps(string runFolder, int steps)
    {
        var clock = Stopwatch.StartNew();
        while (IterationRows(runFolder) < steps)
        {
            if (_process.HasExited) Assert.Fail($"the run ended before step {steps}: {Wait().Error}");
            if (clock.Elapsed > TimeSpan.FromSeconds(120)) Assert.Fail($"step {steps} not reached in 120 s");
            Thread.Sleep(5);
        }
    }

    static int IterationRows(string runFolder)
    {
        var path = Path.Combine(runFolder, "iterations.csv");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return Math.Max(0, reader.ReadToEnd().Count(c => c == '\n') - 1);
        }
        catch (IOException) { return 0; }
    }

    /// <summary>SIGKILL: no handler runs, nothing is flushed.</summary>
    public void KillHard()
    {
        try { _process.Kill(); } catch (InvalidOperationException) { } // already gone
    }

    /// <summary>Sends signal <paramref name="signal"/> (2 SIGINT, 15 SIGTERM) with the system's kill command.</summary>
    public void Signal(int signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", [$"-{signal}", _process.Id.ToString()]) { RedirectStandardError = true })!;
        var error = kill.StandardError.ReadToEnd();
        kill.WaitForExit();
        Assert.True(kill.ExitCode == 0, $"kill -{signal} {_process.Id}: {error}");
    }

    public (int ExitCode, string Output, string Error) Wait()
    {
        if (!_process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            KillHard();
            Assert.Fail("the trainer process did not end within 120 s");
        }
        _process.WaitForExit();
        return (_process.ExitCode, _output.Result, _error.Result);
    }

    public void Dispose()
    {
        KillHard();
        _process.Dispose();
    }
}
