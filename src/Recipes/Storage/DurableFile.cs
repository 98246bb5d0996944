using System.Runtime.InteropServices;
using System.Text;

namespace Trainer.Recipes.Storage;

/// <summary>
/// Replaces a file so that a crash, a power cut or a full disk leaves either the old file or the
/// new one, never half of one: write NAME.tmp, flush it to the disk, rename it over NAME, then flush
/// the folder (so the rename itself survives a power cut). On failure NAME.tmp is removed and NAME
/// is untouched; a full disk is reported as a <see cref="DiskFullException"/> naming NAME.
/// </summary>
internal static class DurableFile
{
    public static string TemporaryFor(string path) => path + ".tmp";

    public static void Write(string path, Action<FileStream> write)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temporary = TemporaryFor(path);
        try
        {
            DiskFull.Guard(path, () =>
            {
                Directory.CreateDirectory(folder);
                using (var file = new FileStream(temporary, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
                {
                    write(file);
                    file.Flush(flushToDisk: true);
                }
                File.Move(temporary, path, overwrite: true);
            });
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
        SyncFolder(folder);
    }

    public static void WriteAllText(string path, string text) => Write(path, file => file.Write(Encoding.UTF8.GetBytes(text)));

    static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>
    /// fsync on the folder, so its entries (a rename) are on the disk; true when that happened.
    /// Only on Linux and macOS (.NET opens no folder handles); best effort: a failure changes nothing the caller can fix.
    /// </summary>
    public static bool SyncFolder(string folder)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return false;
        try
        {
            int fd = Libc.open(folder, 0 /* O_RDONLY */);
            if (fd < 0) return false;
            bool synced = Libc.fsync(fd) == 0;
            Libc.close(fd);
            return synced;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    static class Libc
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }
}
