using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
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

    /// <summary>
    /// How long a wait for the trainer may take before the test fails: generous, since the tiny run
    /// took 34 s on two cores shared with three other builds and test runs. Only a hang ever waits
    /// this long; every wait ends as soon as its condition holds.
    /// </summary>
    public static readonly TimeSpan Patience = TimeSpan.FromMinutes(10);

    readonly Process _process;
    readonly Task<string> _output;
    // stderr line by line, so that a test can wait for a line while the process runs on.
    readonly StringBuilder _error = new();
    bool _errorEnded;

    public TrainerProcess(params string[] args) : this(new Dictionary<string, string>(), args) { }

    /// <summary>With <paramref name="environment"/> added to the child's environment.</summary>
    public TrainerProcess(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "trainer.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing");
        // Through env, with SIGINT and SIGTERM reset to their defaults: a test host started in the
        // background by a shell without job control inherits SIGINT ignored, its children too, and
        // .NET then installs no handler for it (as it should: such a process ignores Ctrl-C).
        var psi = new ProcessStartInfo("env", ["--default-signal=INT,TERM", "dotnet", dll, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        _process = new Process { StartInfo = psi };
        _process.ErrorDataReceived += (_, e) =>
        {
            lock (_error)
            {
                if (e.Data is null) _errorEnded = true;
                else _error.Append(e.Data).Append('\n');
                Monitor.PulseAll(_error);
            }
        };
        _process.Start();
        _process.BeginErrorReadLine();
        _output = _process.StandardOutput.ReadToEndAsync();
    }

    /// <summary>`trainer train --out DIR` with the tiny run's settings, then <paramref name="settings"/> (later ones win).</summary>
    public static TrainerProcess Train(string runFolder, params string[] settings) => Train(new Dictionary<string, string>(), runFolder, settings);

    /// <summary>The same, with <paramref name="environment"/> added to the child's environment.</summary>
    public static TrainerProcess Train(IReadOnlyDictionary<string, string> environment, string runFolder, params string[] settings) =>
        new(environment, ["train", "--out", runFolder, .. TinyRun.Concat(settings).SelectMany(s => new[] { "--set", s })]);

    public static TrainerProcess Resume(string runFolder) => new("train", "--out", runFolder, "--resume");

    /// <summary>Waits until iterations.csv in <paramref name="runFolder"/> has at least <paramref name="steps"/> rows; fails the test if the process ends first.</summary>
    public void WaitForSteps(string runFolder, int steps)
    {
        var clock = Stopwatch.StartNew();
        while (IterationRows(runFolder) < steps)
        {
            if (_process.HasExited) Assert.Fail($"the run ended before step {steps}: {Wait().Error}");
            if (clock.Elapsed > Patience) Assert.Fail($"step {steps} not reached in {Patience}");
            Thread.Sleep(5);
        }
    }

    /// <summary>Waits until the process has printed a line containing <paramref name="text"/> on stderr; fails the test if stderr ends first.</summary>
    public void WaitForError(string text)
    {
        var deadline = DateTime.UtcNow + Patience;
        lock (_error)
        {
            while (!_error.ToString().Contains(text))
            {
                if (_errorEnded) Assert.Fail($"the trainer ended its stderr without '{text}': {_error}");
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_error, left)) Assert.Fail($"no '{text}' on stderr in {Patience}: {_error}");
            }
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

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int SendSignal(int pid, int signal);

    /// <summary>Sends signal <paramref name="signal"/> (2 SIGINT, 15 SIGTERM) to the process, at once (no `kill` process to start).</summary>
    public void Signal(int signal)
    {
        if (_process.HasExited) Assert.Fail($"the trainer ended before signal {signal} could be sent: {Wait().Error}");
        Assert.True(SendSignal(_process.Id, signal) == 0, $"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public (int ExitCode, string Output, string Error) Wait()
    {
        if (!_process.WaitForExit(Patience))
        {
            KillHard();
            Assert.Fail($"the trainer process did not end within {Patience}");
        }
        _process.WaitForExit();   // and its output is read to the end
        lock (_error) return (_process.ExitCode, _output.Result, _error.ToString());
    }

    public void Dispose()
    {
        KillHard();
        _process.Dispose();
    }
}
