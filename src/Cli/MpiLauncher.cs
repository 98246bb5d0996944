using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Trainer.Data;

namespace Trainer.Cli;

/// <summary>
/// `trainer train --nproc N` (and `bench --nproc N`): the same command as N ranks on this machine, started by Open MPI's
/// mpirun, with this process standing for the job. The console shows rank 0's lines; a failure is
/// one line (the failing rank's own, or, for a rank that died, mpirun's notice turned into one line
/// naming it); the exit code is the failing rank's. mpirun runs in a session of its own, so a
/// Ctrl-C in the terminal reaches only this process, which passes it on as SIGUSR1 (mpirun
/// forwards that to every rank, and they stop after the same step with one checkpoint; mpirun's
/// own answer to SIGINT would kill them). A second Ctrl-C ends the job at once.
/// </summary>
public static partial class MpiLauncher
{
    /// <summary>Set for the ranks this launcher starts: their console belongs to it (they stay quiet on a stop signal).</summary>
    public const string LaunchedVariable = Recipes.Distributed.World.LauncherVariable;
    const int SigInt = 2, SigTerm = 15, SigUsr1 = 10;

    /// <summary>Runs `trainer VERB ARGUMENTS` as <paramref name="ranks"/> ranks; <paramref name="runFolder"/> is the training run's (null for bench).</summary>
    public static int Run(string verb, IReadOnlyList<string> rankArguments, int ranks, string? runFolder, TextWriter output, TextWriter error)
    {
        var mpirun = FindOnPath("mpirun")
            ?? throw new BadInputException("--nproc needs Open MPI's mpirun, which is not on PATH: apt-get install -y openmpi-bin (docs/distributed.md)");
        if (!NativeLibrary.TryLoad(Recipes.Distributed.World.MpiLibrary, out var library))
            throw new BadInputException($"--nproc needs Open MPI's {Recipes.Distributed.World.MpiLibrary}, which is not installed: apt-get install -y openmpi-bin");
        NativeLibrary.Free(library);

        var start = new ProcessStartInfo(FindOnPath("setsid") ?? mpirun) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (start.FileName != mpirun) start.ArgumentList.Add(mpirun);
        foreach (var a in MpirunOptions(ranks)) start.ArgumentList.Add(a);
        foreach (var a in TrainerCommand()) start.ArgumentList.Add(a);
        start.ArgumentList.Add(verb);
        foreach (var a in rankArguments) start.ArgumentList.Add(a);
        start.Environment["TERM"] = "dumb";   // mpirun gives ranks a pseudo-terminal; .NET would write escape codes to it
        start.Environment[LaunchedVariable] = "1";

        using var job = Process.Start(start) ?? throw new InvalidOperationException("mpirun did not start");
        var report = new JobReport(output, error, Environment.GetEnvironmentVariable("TRAINER_DEBUG") == "1");
        job.OutputDataReceived += (_, e) => { if (e.Data is not null) report.Output(e.Data); };
        job.ErrorDataReceived += (_, e) => { if (e.Data is not null) report.Error(e.Data); };
        job.BeginOutputReadLine();
        job.BeginErrorReadLine();

        int stopSignal = 0;
        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            int number = context.Signal == PosixSignal.SIGINT ? SigInt : SigTerm;
            var name = number == SigInt ? "Ctrl-C" : "SIGTERM";
            if (Interlocked.CompareExchange(ref stopSignal, number, 0) != 0)
            {
                report.Line($"trainer: {name} again: quitting at once; the last checkpoint written is kept");
                Kill(job.Id, SigTerm);   // mpirun ends every rank
                StopSignals.QuitNow(128 + number);
            }
            report.Line($"trainer: {name}: stopping all {ranks} ranks after the step under way to save a checkpoint (send it again to quit at once)");
            Kill(job.Id, SigUsr1);
        }
        using (PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop))
        using (PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop))
        {
            job.WaitForExit();
        }
        int code = job.ExitCode;
        if (report.ShowFailure()) return code == 0 ? 1 : code;
        if (code == 0) return stopSignal == 0 ? 0 : 128 + stopSignal;
        if (stopSignal != 0 && code == 128 + SigUsr1) return 128 + stopSignal;
        report.Line($"trainer: error: {report.Explain(code)}; {Resume(runFolder, ranks)}");
        return code;
    }

    static string Resume(string? runFolder, int ranks) =>
        runFolder is null ? "nothing was saved"
        : File.Exists(Path.Combine(runFolder, "checkpoints", "last.ckpt"))
            ? $"its last checkpoint is intact: {Recipes.Distributed.World.ResumeCommand(runFolder, ranks, viaNproc: true)}"
            : "no checkpoint was written yet";

    /// <summary>mpirun's options: N ranks, no core binding (each rank sets its own threads), root allowed in containers.</summary>
    static List<string> MpirunOptions(int ranks)
    {
        var options = new List<string> { "-np", ranks.ToString(), "--bind-to", "none", "--stdin", "none", "-x", "TERM", "-x", LaunchedVariable };
        if (Environment.IsPrivilegedProcess) options.Add("--allow-run-as-root");
        if (ranks > Environment.ProcessorCount) options.Add("--oversubscribe");
        return options;
    }

    /// <summary>This trainer as a command line: `dotnet trainer.dll` when run through the dotnet host, the executable otherwise.</summary>
    static List<string> TrainerCommand()
    {
        var host = Environment.ProcessPath ?? "dotnet";
        var assembly = typeof(MpiLauncher).Assembly.Location;
        return Path.GetFileNameWithoutExtension(host) == "dotnet" ? [host, assembly] : [host];
    }

    static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    [DllImport("libc", EntryPoint = "kill")]
    static extern int Kill(int pid, int signal);

    /// <summary>
    /// What the job printed, sorted: rank 0's console passes through; failure lines are kept until
    /// the job ends and one is shown (rank 0's when it has one: every rank may report the same
    /// failure, and rank 0's names the run folder); mpirun's own notices are kept back to explain
    /// an end no rank explained.
    /// </summary>
    sealed partial class JobReport(TextWriter output, TextWriter error, bool verbose)
    {
        readonly object _gate = new();
        readonly List<string> _mpirun = new(), _failures = new();

        public void Output(string line)
        {
            lock (_gate) { output.WriteLine(line); output.Flush(); }
        }

        public void Error(string line)
        {
            lock (_gate)
            {
                if (line.StartsWith("trainer:", StringComparison.Ordinal))
                {
                    if (line.Contains("error: ", StringComparison.Ordinal)) _failures.Add(line);
                    else error.WriteLine(line);
                }
                else
                {
                    _mpirun.Add(line);
                    if (verbose) error.WriteLine(line);
                }
                error.Flush();
            }
        }

        /// <summary>Shows the job's failure line, if a rank reported one; false when none did.</summary>
        public bool ShowFailure()
        {
            lock (_gate)
            {
                if (_failures.Count == 0) return false;
                error.WriteLine(_failures.FirstOrDefault(l => l.StartsWith("trainer: rank 0: ", StringComparison.Ordinal)) ?? _failures[0]);
                error.Flush();
                return true;
            }
        }

        public void Line(string line)
        {
            lock (_gate) { error.WriteLine(line); error.Flush(); }
        }

        /// <summary>Why the job ended with <paramref name="code"/>, from mpirun's notices (a rank that died names itself there).</summary>
        public string Explain(int code)
        {
            lock (_gate)
            {
                var text = string.Join(" ", _mpirun.Select(l => l.Trim()));
                var died = RankDied().Match(text);
                if (died.Success)
                    return $"rank {died.Groups["rank"].Value} ({Where(died)}) ended on signal {died.Groups["signal"].Value}, so mpirun stopped every rank";
                var exited = RankExited().Match(text);
                if (exited.Success)
                    return $"rank {exited.Groups["rank"].Value} ({Where(exited)}) exited with status {exited.Groups["status"].Value}, so mpirun stopped every rank";
                var first = _mpirun.Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.All(c => c == '-'));
                return first is null ? $"mpirun ended with exit code {code}" : $"mpirun ended with exit code {code}: {first}";
            }
        }

        // Open MPI 4.1 reports PID 0 for a rank it lost track of: leave that out.
        static string Where(Match notice) =>
            notice.Groups["pid"].Value is "0" or "" ? $"on {notice.Groups["node"].Value}" : $"PID {notice.Groups["pid"].Value} on {notice.Groups["node"].Value}";

        [GeneratedRegex(@"process rank (?<rank>\d+) with PID (?<pid>\d+) on node (?<node>\S+) exited on signal (?<signal>\d+)")]
        private static partial Regex RankDied();

        [GeneratedRegex(@"rank (?<rank>\d+) with PID (?<pid>\d+) on node (?<node>\S+) exited on.*?status (?<status>\d+)|rank (?<rank>\d+) with PID (?<pid>\d+) on node (?<node>\S+) exited .*?exit code (?<status>\d+)")]
        private static partial Regex RankExited();
    }
}
