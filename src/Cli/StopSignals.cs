using System.Runtime.InteropServices;

namespace Trainer.Cli;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM while a verb trains: the first one cancels <see cref="Token"/>, so
/// the run stops after the step under way and saves where it stands; a second one exits at once.
/// Exit codes follow the shell's 128 + signal number: 130 after SIGINT, 143 after SIGTERM.
/// A rank of a data-parallel job also stops on SIGUSR1 (exit 138), which mpirun forwards to every
/// rank (its own answer to SIGINT and SIGTERM is to kill them); `trainer train --nproc` sends it.
/// </summary>
public sealed class StopSignals : IDisposable
{
    /// <summary>
    /// A test seam (docs/reliability.md): set to 1, a process that got one signal keeps its handlers
    /// and does not end, for up to <see cref="SecondSignalWait"/>, until a second signal quits it,
    /// so a test of the second signal never races the end of a short run. If that time passes, it
    /// says so on stderr (naming this variable) and ends as it would have.
    /// </summary>
    public const string AwaitSecondVariable = "TRAINER_TEST_AWAIT_SECOND_SIGNAL";

    public static readonly TimeSpan SecondSignalWait = TimeSpan.FromMinutes(2);

    readonly CancellationTokenSource _stop = new();
    readonly TextWriter _error;
    readonly PosixSignalRegistration[] _registrations;
    readonly bool _awaitSecond = Environment.GetEnvironmentVariable(AwaitSecondVariable) == "1";
    int _signal;

    public StopSignals(TextWriter error)
    {
        _error = error;
        var signals = new List<PosixSignal> { PosixSignal.SIGINT, PosixSignal.SIGTERM };
        if (Recipes.Distributed.World.LaunchedByMpi) signals.Add((PosixSignal)UserSignal1);
        _registrations = signals.Select(signal => PosixSignalRegistration.Create(signal, Handle)).ToArray();
    }

    /// <summary>SIGUSR1's number on Linux (.NET takes raw signal numbers).</summary>
    public const int UserSignal1 = 10;

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>The exit code of a run the first signal stopped: 130 (SIGINT) or 143 (SIGTERM).</summary>
    public int ExitCode => 128 + _signal;

    void Handle(PosixSignalContext context)
    {
        context.Cancel = true; // the run ends itself, after saving
        int number = context.Signal switch { PosixSignal.SIGINT => 2, PosixSignal.SIGTERM => 15, _ => UserSignal1 };
        var name = number switch { 2 => "Ctrl-C", 15 => "SIGTERM", _ => "SIGUSR1" };
        if (Interlocked.CompareExchange(ref _signal, number, 0) != 0)
        {
            _error.WriteLine($"trainer: {name} again: quitting at once; the last checkpoint written is kept");
            _error.Flush();
            Console.Out.Flush();
            // Not Environment.Exit: its orderly shutdown runs libtorch's static destructors while the
            // training thread is still inside libtorch, which crashes (SIGSEGV). _exit ends the process
            // as the signal itself would; checkpoint files are written to a temporary name and renamed.
            QuitNow(128 + number);
        }
        _error.WriteLine($"trainer: {name}: stopping after the step under way to save a checkpoint (send it again to quit at once)");
        _error.Flush();
        _stop.Cancel();
    }

    [DllImport("libc", EntryPoint = "_exit")]
    public static extern void QuitNow(int status);

    public void Dispose()
    {
        if (_awaitSecond && Volatile.Read(ref _signal) != 0)
        {
            Thread.Sleep(SecondSignalWait);   // a second signal ends the process during it (QuitNow)
            _error.WriteLine($"trainer: no second signal ended the process within {SecondSignalWait.TotalMinutes:F0} minutes ({AwaitSecondVariable})");
        }
        foreach (var registration in _registrations) registration.Dispose();
        // _stop is deliberately not disposed (it holds no timer): .NET runs each handler on a thread
        // of its own, and one that started just before the registrations went may still cancel it;
        // a disposed source would throw there and crash a run that had ended well.
    }
}
