using Trainer.Data;

namespace Trainer.Recipes.Distributed;

/// <summary>
/// The job this process belongs to. Started by mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE in every
/// rank), it joins the MPI world once; otherwise it is a job of one. Whatever starts the ranks
/// (`trainer train --nproc N`, mpirun on several machines, srun), the ranks find each other here.
/// </summary>
public static class World
{
    /// <summary>Set by `trainer train --nproc` for the ranks it starts.</summary>
    public const string LauncherVariable = "TRAINER_MPI_LAUNCHER";

    static ICollective? _current;
    static readonly object Gate = new();

    /// <summary>Open MPI's C library, loaded at run time (the launcher checks it is installed).</summary>
    public const string MpiLibrary = OpenMpi.Library;

    /// <summary>True when an MPI launcher started this process as one rank of several.</summary>
    public static bool LaunchedByMpi => int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE"), out var n) && n > 1;

    /// <summary>
    /// The command that resumes a run of this job's shape in <paramref name="folder"/>: with
    /// `--nproc N` or under mpirun, as <paramref name="viaNproc"/> says (null: as this process was started).
    /// </summary>
    public static string ResumeCommand(string folder, int ranks, bool? viaNproc = null)
    {
        var command = $"trainer train --out {(folder.Contains(' ') ? $"'{folder}'" : folder)} --resume";
        if (ranks == 1) return command;
        return viaNproc ?? Environment.GetEnvironmentVariable(LauncherVariable) == "1" ? $"{command} --nproc {ranks}" : $"mpirun -np {ranks} {command}";
    }

    /// <summary>The rank number the launcher gave this process (before MPI starts), or 0.</summary>
    public static int LaunchRank => int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_RANK"), out var r) ? r : 0;

    /// <summary>This process's job, joined on first use.</summary>
    public static ICollective Current
    {
        get
        {
            lock (Gate)
            {
                if (_current is not null) return _current;
                if (!LaunchedByMpi) return _current = SingleProcess.Instance;
                return _current = OpenMpi.Start(out var problem) ?? throw new BadInputException(problem!);
            }
        }
    }

    /// <summary>Ends the whole job with <paramref name="exitCode"/> when this process is a rank that joined it (a rank that failed).</summary>
    public static void AbortIfStarted(int exitCode)
    {
        ICollective? current;
        lock (Gate) current = _current;
        if (current is OpenMpi mpi) mpi.Abort(exitCode);
    }

    /// <summary>Ends MPI after a run that ended well (a failed rank aborts the job instead).</summary>
    public static void Finish()
    {
        lock (Gate) (_current as OpenMpi)?.Finish();
    }
}
