namespace Trainer.Recipes.Storage;

/// <summary>
/// The disk (or the user's quota) filled up while a file was written. The CLI prints the message as
/// one line and exits with code 2: the fix lies in the user's environment, not in trainer.
/// </summary>
public sealed class DiskFullException(string file, string reason, string? advice = null)
    : Exception($"{reason} while writing {file}{(advice is null ? "" : "; " + advice)}")
{
    public string File { get; } = file;
    public string Reason { get; } = reason;
    public string? Advice { get; } = advice;

    /// <summary>The same failure with what to do next (which checkpoint survived, how to go on).</summary>
    public DiskFullException WithAdvice(string advice) => new(File, Reason, advice);
}

/// <summary>Recognises ENOSPC and EDQUOT (and Windows' disk-full codes) behind an IOException.</summary>
internal static class DiskFull
{
    // .NET reports an errno it has no exception type for as IOException.HResult = errno on Unix.
    const int Enospc = 28;
    static readonly int Edquot = OperatingSystem.IsMacOS() ? 69 : 122;
    const int WindowsDiskFull = unchecked((int)0x80070070), WindowsHandleDiskFull = unchecked((int)0x80070027);

    /// <summary>"disk full" or "disk quota exceeded" when <paramref name="e"/> (or an exception it wraps) is one; otherwise null.</summary>
    public static string? Reason(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is not IOException io) continue;
            if (OperatingSystem.IsWindows())
            {
                if (io.HResult is WindowsDiskFull or WindowsHandleDiskFull) return "disk full";
            }
            else if (io.HResult == Enospc) return "disk full";
            else if (io.HResult == Edquot) return "disk quota exceeded";
        }
        return null;
    }

    /// <summary>Runs <paramref name="write"/>; a full disk becomes a <see cref="DiskFullException"/> naming <paramref name="file"/>.</summary>
    public static void Guard(string file, Action write)
    {
        try { write(); }
        catch (Exception e) when (e is not DiskFullException && Reason(e) is not null)
        {
            throw new DiskFullException(file, Reason(e)!);
        }
    }
}
