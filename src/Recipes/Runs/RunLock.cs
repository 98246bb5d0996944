using Trainer.Data;

namespace Trainer.Recipes.Runs;

/// <summary>
/// One trainer per run folder: the folder's <c>.trainer.lock</c> is held open with FileShare.None
/// while a run writes there. .NET backs that with an advisory flock on Linux and macOS, which the
/// kernel releases when the process ends, however it ends (kill -9 included), so a lock never
/// outlives its run. A second process (or a second run in the same process) is refused.
/// </summary>
internal sealed class RunLock : IDisposable
{
    public const string FileName = ".trainer.lock";
    // "Would block" from flock: EWOULDBLOCK on Linux and macOS; a sharing violation on Windows.
    static readonly int[] InUseCodes = [11, 35, unchecked((int)0x80070020), unchecked((int)0x80070021)];

    readonly FileStream _file;
    readonly string _root;
    readonly bool _createdFile, _createdRoot;

    RunLock(FileStream file, string root, bool createdFile, bool createdRoot) =>
        (_file, _root, _createdFile, _createdRoot) = (file, root, createdFile, createdRoot);

    /// <summary>Set once the run writes into the folder; until then, releasing the lock takes back what acquiring it created.</summary>
    public bool Started { get; set; }

    public static string PathIn(string root) => Path.Combine(root, FileName);

    /// <summary>Locks <paramref name="root"/> (creating it when missing), or refuses: it is in use.</summary>
    public static RunLock Acquire(string root)
    {
        var path = PathIn(root);
        bool createdRoot = !Directory.Exists(root), createdFile = !File.Exists(path);
        try
        {
            Directory.CreateDirectory(root);
            return new RunLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None), root, createdFile, createdRoot);
        }
        catch (IOException e) when (InUseCodes.Contains(e.HResult))
        {
            throw new BadInputException($"{root} is in use by another trainer process (it holds {FileName}); wait for it to end, or choose another --out");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"cannot lock the run folder {root}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    public void Dispose()
    {
        // A refused or failed start leaves the folder as it found it. (Removing a lock file while
        // holding it could let a process that opened it in the same microseconds lock the removed
        // file; only a start that never wrote anything does it.)
        if (!Started && _createdFile) TryRun(() => File.Delete(_file.Name));
        _file.Dispose();
        if (!Started && _createdRoot) TryRun(() => Directory.Delete(_root));
    }

    static void TryRun(Action action)
    {
        try { action(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
