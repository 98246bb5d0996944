using System.Buffers.Binary;
using System.Diagnostics;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Runs;
using Trainer.Recipes.Sinks;
using Trainer.Recipes.Storage;
using Xunit;

namespace Trainer.Tests;

/// <summary>A run folder survives a full disk, a second trainer, a resume of a finished run and files torn by a crash.</summary>
[Collection(TinyRunCollection.Name)]
public class RunFolderSafetyTests(TinyRunFixture finished)
{
    static Cli.Result Train(string folder, params string[] more) => Cli.Run(["train", "--out", folder, .. TinyRunFixture.Args, .. more]);
    static Cli.Result Resume(string folder, params string[] more) => Cli.Run(["train", "--out", folder, "--resume", .. more]);

    static void AssertSucceeded(Cli.Result r) => Assert.True(r.ExitCode == 0, r.Error);

    static string[] Temporaries(string folder) =>
        Directory.GetFiles(folder, "*.tmp", SearchOption.AllDirectories);

    [Fact]
    public void A_full_disk_at_the_first_checkpoint_stops_the_run_with_one_line_and_leaves_no_temporary_file()
    {
        using var dir = new TempDir();
        var run = new RunFolder(dir["run"]);
        Directory.CreateDirectory(run.Checkpoints);
        // A real ENOSPC from the kernel: every write to /dev/full fails with it.
        File.CreateSymbolicLink(DurableFile.TemporaryFor(run.LastCheckpoint), "/dev/full");

        var result = Train(run.Root);
        CheckpointIntegrityTests.AssertOneLine(result, 2, "disk full while writing", run.LastCheckpoint, "no checkpoint was written yet", "free space");
        Assert.Empty(Temporaries(run.Root));
        Assert.False(File.Exists(run.LastCheckpoint));
        // The lock went with the run.
        using (RunLock.Acquire(run.Root)) { }
    }

    [Fact]
    public void A_full_disk_at_a_later_checkpoint_keeps_the_previous_one_intact_and_the_run_resumes_afterwards()
    {
        using var dir = new TempDir();
        var run = new RunFolder(dir["run"]);
        finished.CopyTo(run.Root);
        var before = File.ReadAllBytes(run.LastCheckpoint);
        File.CreateSymbolicLink(DurableFile.TemporaryFor(run.LastCheckpoint), "/dev/full");

        var result = Resume(run.Root, "--set", "train.epochs=2");
        CheckpointIntegrityTests.AssertOneLine(result, 2, $"disk full while writing {run.LastCheckpoint}",
            "the last good checkpoint (epoch 1) is intact", $"trainer train --out {run.Root} --resume");
        Assert.Empty(Temporaries(run.Root));
        Assert.Equal(before, File.ReadAllBytes(run.LastCheckpoint));
        using (var kept = Checkpoint.Load(run.LastCheckpoint)) Assert.Equal(1, kept.Meta.Epoch);

        // Space again: the resume redoes epoch 2, and metrics.csv holds each epoch once.
        AssertSucceeded(Resume(run.Root, "--set", "train.epochs=2"));
        Assert.Equal([1, 2], CsvSink.Read(run.Metrics).Select(r => r.Epoch));
        using (var last = Checkpoint.Load(run.LastCheckpoint)) Assert.Equal(2, last.Meta.Epoch);
    }

    [Fact]
    public void A_full_disk_while_writing_the_summary_names_it_and_the_checkpoint_written_before()
    {
        using var dir = new TempDir();
        var run = new RunFolder(dir["run"]);
        Directory.CreateDirectory(run.Root);
        File.CreateSymbolicLink(DurableFile.TemporaryFor(run.Summary), "/dev/full");
        var result = Train(run.Root);
        CheckpointIntegrityTests.AssertOneLine(result, 2, $"disk full while writing {run.Summary}", "the last good checkpoint (epoch 1) is intact");
        Assert.Empty(Temporaries(run.Root));
    }

    [Fact]
    public void A_folder_in_use_is_refused_with_one_line_and_nothing_written()
    {
        using var dir = new TempDir();
        var root = dir["run"];
        using (RunLock.Acquire(root))
        {
            CheckpointIntegrityTests.AssertOneLine(Train(root), 2, $"{root} is in use by another trainer process");
            Assert.Equal([RunLock.PathIn(root)], Directory.GetFileSystemEntries(root));
        }
        // A refused start leaves nothing behind.
        Assert.False(Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any());

        finished.CopyTo(root);
        var snapshot = Snapshot(root);
        using (RunLock.Acquire(root))
        {
            CheckpointIntegrityTests.AssertOneLine(Resume(root, "--set", "train.epochs=2"), 2, $"{root} is in use by another trainer process");
            CheckpointIntegrityTests.AssertOneLine(Train(dir["run"]), 2, "in use");
        }
        Assert.Equal(snapshot, Snapshot(root));
    }

    [Fact]
    public void A_lock_held_by_another_process_refuses_the_run_until_that_process_is_killed()
    {
        using var dir = new TempDir();
        var root = dir["run"];
        Directory.CreateDirectory(root);
        // The holder keeps the lock until it is killed (or its stdin closes), however long the test takes.
        var script = "import fcntl, sys\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.read()\n";
        var psi = new ProcessStartInfo("python3", ["-c", script, RunLock.PathIn(root)]) { RedirectStandardOutput = true, RedirectStandardInput = true };
        using var holder = Process.Start(psi)!;
        try
        {
            Assert.Equal("locked", holder.StandardOutput.ReadLine());
            CheckpointIntegrityTests.AssertOneLine(Train(root), 2, "in use by another trainer process");
            Assert.Equal([RunLock.PathIn(root)], Directory.GetFileSystemEntries(root));
        }
        finally
        {
            holder.Kill(); // SIGKILL: the kernel drops its flock
            holder.WaitForExit();
        }
        using (RunLock.Acquire(root)) { }
    }

    [Fact]
    public void Resuming_a_finished_run_is_refused_with_how_to_extend_it_and_extending_works()
    {
        using var dir = new TempDir();
        var root = dir["run"];
        finished.CopyTo(root);
        var snapshot = Snapshot(root);
        CheckpointIntegrityTests.AssertOneLine(Resume(root), 2, $"{root} finished (epoch 1 of 1)", "--set train.epochs=M");
        Assert.Equal(snapshot, Snapshot(root));
        var extended = Resume(root, "--set", "train.epochs=2");
        AssertSucceeded(extended);
        Assert.Contains("resuming after epoch 1", extended.Output);
        Assert.Equal([1, 2], CsvSink.Read(Path.Combine(root, "metrics.csv")).Select(r => r.Epoch));
    }

    [Fact]
    public void Torn_csv_rows_and_event_records_left_by_a_crash_are_cut_on_resume()
    {
        using var dir = new TempDir();
        var run = new RunFolder(dir["run"]);
        finished.CopyTo(run.Root);
        var events = Assert.Single(Directory.GetFiles(run.Root, "events.out.tfevents.*"));
        var whole = File.ReadAllBytes(events);

        // What a crash in epoch 2 can leave: rows of an epoch no checkpoint covers, then half a line;
        // in the event file a record whose CRC fails, then half a record.
        File.AppendAllText(run.Metrics, "2,4,0.1,2.2,0.1,2.3,0.1,0.5,1.5,300\r\n2,4,0.1,2.");
        File.AppendAllText(run.Iterations, "3,2,0.1,2.25,0.1\n4,2,0.1,2.24,0.1\n5,3,0.");
        var broken = FirstRecord(whole);
        broken[^5] ^= 0x01;
        File.WriteAllBytes(events, [.. whole, .. broken, .. whole[..10]]);
        var copy = events + ".copy";
        File.WriteAllBytes(copy, [.. whole, .. FirstRecord(whole)[..20]]);

        AssertSucceeded(Resume(run.Root, "--set", "train.epochs=2"));
        Assert.Equal([1, 2], CsvSink.Read(run.Metrics).Select(r => r.Epoch));
        Assert.Equal([1L, 2, 3, 4], IterationLogSink.Read(run.Iterations).Select(r => r.Step));
        Assert.Equal(whole, File.ReadAllBytes(events));
        Assert.Equal(whole, File.ReadAllBytes(copy));
        var decoded = Decode(run.Root);
        Assert.Equal(3, decoded.Split("all CRCs OK").Length - 1);
    }

    [Fact]
    public void Repairs_keep_whole_files_as_they_are()
    {
        using var dir = new TempDir();
        var csv = dir["m.csv"];
        File.WriteAllText(csv, "epoch,step,lr\r\n1,4,0.1\r\n2,8,NaN\r\n");
        Assert.Equal(0, RunFileRepair.TrimCsv(csv, "epoch", 2));
        Assert.Equal("epoch,step,lr\r\n1,4,0.1\r\n2,8,NaN\r\n", File.ReadAllText(csv));
        Assert.Equal(1, RunFileRepair.TrimCsv(csv, "epoch", 1));
        Assert.Equal("epoch,step,lr\r\n1,4,0.1\r\n", File.ReadAllText(csv));
        File.WriteAllText(csv, "epo");
        RunFileRepair.TrimCsv(csv, "epoch", 1);
        Assert.Equal("", File.ReadAllText(csv));
        Assert.Empty(Temporaries(dir.Path));
        Assert.Equal(0, RunFileRepair.TrimCsv(dir["missing.csv"], "epoch", 1));
        Assert.True(DurableFile.SyncFolder(dir.Path), "fsync of the folder did not happen");
    }

    /// <summary>The first TFRecord of an event file: 8-byte length, 4-byte CRC, the data, 4-byte CRC.</summary>
    static byte[] FirstRecord(byte[] file) => file[..(16 + (int)BinaryPrimitives.ReadUInt64LittleEndian(file))];

    static string Decode(string folder)
    {
        var psi = new ProcessStartInfo("python3", [Path.Combine(TestPaths.SharedData, "..", "tools", "read_tfevents.py"), folder])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var error = process.StandardError.ReadToEndAsync();
        var text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, text + error.Result);
        return text;
    }

    /// <summary>Every file under <paramref name="root"/> with its bytes, to show nothing changed.</summary>
    static Dictionary<string, string> Snapshot(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories).Order()
            .ToDictionary(f => f, f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));
}
