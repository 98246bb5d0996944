namespace Trainer.Recipes.Benchmarks;

/// <summary>The process's resident memory as Linux reports it in /proc/self/status (the working set elsewhere).</summary>
internal static class ProcessMemory
{
    /// <summary>Resident set size now (VmRSS), in bytes.</summary>
    public static long ResidentBytes() => StatusKilobytes("VmRSS:") is long kb ? kb * 1024 : Environment.WorkingSet;

    /// <summary>Peak resident set size since start or the last <see cref="ResetPeak"/> (VmHWM), in bytes; null where unknown.</summary>
    public static long? PeakResidentBytes() => StatusKilobytes("VmHWM:") is long kb ? kb * 1024 : null;

    /// <summary>Resets the peak (Linux: "5" into /proc/self/clear_refs), so a later reading covers only what follows.</summary>
    public static void ResetPeak()
    {
        if (!File.Exists("/proc/self/clear_refs")) return;
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Minor page faults of this process so far (field 10 of /proc/self/stat); null where unknown.</summary>
    public static long? MinorFaults()
    {
        if (!File.Exists("/proc/self/stat")) return null;
        var stat = File.ReadAllText("/proc/self/stat");
        // The command name (field 2) may hold spaces; the fields after it start with field 3.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[7]);
    }

    static long? StatusKilobytes(string field)
    {
        if (!File.Exists("/proc/self/status")) return null;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        return null;
    }
}
