using System.Diagnostics;
using System.Text.Json;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Runs;
using Trainer.Recipes.Sinks;
using Trainer.Recipes.Storage;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>
/// Data-parallel training on 2 ranks of this machine through Open MPI (scripts/test.sh installs
/// openmpi-bin when missing): the same weights as one process, one run folder, sharded validation
/// equal to `trainer eval`, a killed rank ending the job, Ctrl-C, resume, TCP, bad input.
/// </summary>
public class DistributedTests
{
    /// <summary>LeNet-5 (no BatchNorm, no dropout) on 512 images of the embedded sample: 8 steps an epoch, 2 epochs, a checkpoint every 2 steps.</summary>
    static string[] LeNetRun(string folder, params string[] more) =>
    [
        "train", "--out", folder, .. new[]
        {
            "model=lenet5", "data.name=cifar10-sample", "data.subset=512", "data.val_subset=128", "train.batch_size=64", "train.epochs=2",
            "checkpoint.every_steps=2", "log.histograms=false", "log.image_grid=false", "log.progress=false", "log.every_iterations=1",
        }.Concat(more).SelectMany(s => new[] { "--set", s }),
    ];

    static (int ExitCode, string Output, string Error) RunToEnd(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var process = new TrainerProcess(environment, args);
        return process.Wait();
    }

    static (int ExitCode, string Output, string Error) RunToEnd(params string[] args) => RunToEnd(new Dictionary<string, string>(), args);

    static void Succeeded((int ExitCode, string Output, string Error) r) =>
        Assert.True(r.ExitCode == 0, $"exit code {r.ExitCode}\n{r.Output}\n{r.Error}");

    static Dictionary<string, Tensor> LastWeights(string folder)
    {
        using var checkpoint = Checkpoint.Load(Path.Combine(folder, "checkpoints", "last.ckpt"));
        return checkpoint.Model.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
    }

    static double MaxDifference(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        return a.Keys.Max(k => a[k].to(ScalarType.Float64).sub(b[k].to(ScalarType.Float64)).abs().max().item<double>());
    }

    static JsonElement Summary(string folder) => JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "summary.json"))).RootElement;

    [Fact]
    public void Two_ranks_train_the_weights_one_process_trains_on_the_same_batches_over_shared_memory_and_tcp()
    {
        using var dir = new TempDir();
        Succeeded(RunToEnd(LeNetRun(dir["one"])));
        Succeeded(RunToEnd([.. LeNetRun(dir["two"]), "--nproc", "2"]));
        // Open MPI's TCP transport (what crosses machines), kept on loopback.
        var tcp = new Dictionary<string, string>
        {
            ["OMPI_MCA_pml"] = "ob1", ["OMPI_MCA_btl"] = "tcp,self", ["OMPI_MCA_btl_tcp_if_include"] = "lo", ["OMPI_MCA_oob_tcp_if_include"] = "lo",
        };
        Succeeded(RunToEnd(tcp, [.. LeNetRun(dir["tcp"]), "--nproc", "2"]));

        var one = LastWeights(dir["one"]);
        var two = LastWeights(dir["two"]);
        var overTcp = LastWeights(dir["tcp"]);
        Assert.Equal(16, Summary(dir["two"]).GetProperty("steps").GetInt64());
        Assert.Equal(2, Summary(dir["two"]).GetProperty("world_size").GetInt32());
        Assert.False(Summary(dir["one"]).TryGetProperty("world_size", out _));
        // Sums of two halves' gradients instead of one mean: rounding differs, nothing else.
        double difference = MaxDifference(one, two);
        Assert.True(difference < 1e-5, $"2 ranks ended {difference:G3} away from 1 process");
        Assert.Equal(0, MaxDifference(two, overTcp));   // the same sums, whatever carries them
        // Validation sums over both ranks' shares: the metrics of the whole set, as one process has
        // them (weights a rounding apart may move one of the 128 images across a tie, no more).
        var metricsOne = Summary(dir["one"]).GetProperty("final");
        var metricsTwo = Summary(dir["two"]).GetProperty("final");
        Assert.InRange(Math.Abs(metricsOne.GetProperty("val_top1").GetDouble() - metricsTwo.GetProperty("val_top1").GetDouble()), 0, 1.0 / 128 + 1e-9);
        Assert.Equal(metricsOne.GetProperty("val_loss").GetDouble(), metricsTwo.GetProperty("val_loss").GetDouble(), 4);
    }

    [Fact]
    public void Sync_bn_on_two_ranks_normalises_over_the_global_batch_as_one_process_does()
    {
        using var dir = new TempDir();
        string[] Run(string folder, params string[] more) =>
        [
            "train", "--out", folder, .. new[]
            {
                // A small learning rate: at lr 0.1 the first steps of ResNet-20 amplify rounding
                // differences (float64 sums here, oneDNN's in one process) a thousandfold.
                "data.subset=256", "data.val_subset=64", "train.batch_size=64", "train.iterations=2", "optimizer.lr=0.005",
                "log.histograms=false", "log.image_grid=false", "log.progress=false",
            }.Concat(more).SelectMany(s => new[] { "--set", s }),
        ];
        Succeeded(RunToEnd(Run(dir["one"])));
        Succeeded(RunToEnd([.. Run(dir["sync"], "train.sync_bn=true"), "--nproc", "2"]));
        Succeeded(RunToEnd([.. Run(dir["per-rank"]), "--nproc", "2"]));
        var one = LastWeights(dir["one"]);
        // Weights and running statistics (the checkpoint holds both): ResNet-20's BatchNorm over the
        // global batch, summed over 2 ranks, is one process's BatchNorm, to rounding.
        double synced = MaxDifference(one, LastWeights(dir["sync"]));
        double perRank = MaxDifference(one, LastWeights(dir["per-rank"]));
        Assert.True(synced < 1e-4, $"sync_bn on 2 ranks ended {synced:G3} away from 1 process (per-rank statistics: {perRank:G3})");
        Assert.True(perRank > 10 * synced, $"per-rank statistics ({perRank:G3}) should differ from 1 process far more than synchronised ones ({synced:G3})");
    }

    [Fact]
    public void ResNet20_on_two_ranks_learns_writes_one_run_folder_and_validates_as_trainer_eval_does()
    {
        using var dir = new TempDir();
        var run = dir["run"];
        var r = RunToEnd(["train", "--nproc", "2", "--out", run, "--set", "train.epochs=3", "--set", "train.batch_size=128",
            "--set", "log.histograms=false", "--set", "log.progress=false"]);
        Succeeded(r);
        // One run folder, written by rank 0 alone; the console is rank 0's (one "run folder" line).
        Assert.Equal(["run"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
        Assert.Single(r.Output.Split('\n'), line => line.StartsWith("run folder:"));
        var summary = Summary(run);
        Assert.Equal(2, summary.GetProperty("world_size").GetInt32());
        var final = summary.GetProperty("final");
        double top1 = final.GetProperty("val_top1").GetDouble();
        Assert.True(top1 > 0.2, $"val top-1 {top1:P1} after 3 epochs on 2 ranks (chance is 10%)");

        // The sharded validation of the last epoch equals one process evaluating the checkpoint
        // (batches of 64: the same images per forward pass as each rank's share of 128).
        var eval = Cli.Run("eval", "--checkpoint", Path.Combine(run, "checkpoints", "last.ckpt"), "--batch", "64", "--json");
        Assert.True(eval.ExitCode == 0, eval.Error);
        var single = JsonDocument.Parse(eval.Output).RootElement;
        Assert.Equal(single.GetProperty("top1").GetDouble(), top1, 9);
        Assert.Equal(single.GetProperty("top5").GetDouble(), final.GetProperty("val_top5").GetDouble(), 9);
        Assert.Equal(single.GetProperty("loss").GetDouble(), final.GetProperty("val_loss").GetDouble(), 5);
    }

    [Fact]
    public void A_killed_rank_ends_the_job_and_ctrl_c_stops_every_rank_and_both_resume_to_the_uninterrupted_weights()
    {
        using var dir = new TempDir();
        Succeeded(RunToEnd([.. LeNetRun(dir["straight"]), "--nproc", "2"]));
        var straight = LastWeights(dir["straight"]);

        // kill -9 of rank 1 mid-epoch: mpirun notices, every rank ends, one line names the rank.
        var tag = Guid.NewGuid().ToString("N");
        var killed = dir["killed"];
        // Every rank holds after step 3 until a signal (TestHoldSink), so the kill always meets the run under way.
        var holdAtStep3 = new Dictionary<string, string> { [TestHoldSink.Variable] = "3" };
        using (var job = new TrainerProcess(new Dictionary<string, string>(holdAtStep3) { ["TRAINER_TEST_TAG"] = tag }, [.. LeNetRun(killed), "--nproc", "2"]))
        {
            job.WaitForSteps(killed, 3);
            int rank1 = RankProcess(tag, 1);
            Assert.Equal(0, SendSignal(rank1, 9));
            var (code, _, error) = job.Wait();
            Assert.NotEqual(0, code);
            var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, $"expected one line, got: {error}");
            Assert.Contains("rank 1", lines[0]);
            Assert.Contains("--resume --nproc 2", lines[0]);
        }
        Assert.Empty(RankProcesses(tag));   // no rank left behind
        Succeeded(RunToEnd("train", "--out", killed, "--resume", "--nproc", "2"));
        Assert.Equal(0, MaxDifference(straight, LastWeights(killed)));

        // Ctrl-C on the launcher: every rank stops after the same step, one checkpoint, exit 130.
        var stopped = dir["stopped"];
        using (var job = new TrainerProcess(holdAtStep3, [.. LeNetRun(stopped), "--nproc", "2"]))
        {
            job.WaitForSteps(stopped, 3);
            job.Signal(2);
            var (code, output, error) = job.Wait();
            Assert.True(code == 130, $"exit code {code}\n{output}\n{error}");
            Assert.Contains("stopping all 2 ranks after the step under way", error);
            Assert.Contains("--resume --nproc 2", output);
        }
        // The signal came while both ranks held after step 3: they agreed to stop after step 4.
        using (var checkpoint = Checkpoint.Load(Path.Combine(stopped, "checkpoints", "last.ckpt")))
            Assert.Equal(4, checkpoint.Meta.Step);
        // The same stop resumed on 1 process: step k's global batch does not depend on the ranks, so it
        // goes on where 2 ranks stopped (rounding apart, as 1 process and 2 ranks are).
        var alone = dir["stopped-alone"];
        CopyFolder(stopped, alone);
        Succeeded(RunToEnd("train", "--out", alone, "--resume"));
        Succeeded(RunToEnd("train", "--out", stopped, "--resume", "--nproc", "2"));
        Assert.Equal(0, MaxDifference(straight, LastWeights(stopped)));
        double difference = MaxDifference(straight, LastWeights(alone));
        Assert.True(difference < 1e-5, $"resumed on 1 process, it ended {difference:G3} away from the 2-rank run");
    }

    [Fact]
    public void A_second_ctrl_c_ends_every_rank_at_once()
    {
        using var dir = new TempDir();
        var tag = Guid.NewGuid().ToString("N");
        var run = dir["run"];
        // The ranks hold after step 3, and once stopped they wait for a second signal (the seams of
        // docs/reliability.md), so the second Ctrl-C always meets the job under way.
        var environment = new Dictionary<string, string>
        {
            [TestHoldSink.Variable] = "3", [Trainer.Cli.StopSignals.AwaitSecondVariable] = "1", ["TRAINER_TEST_TAG"] = tag,
        };
        using (var job = new TrainerProcess(environment, [.. LeNetRun(run), "--nproc", "2"]))
        {
            job.WaitForSteps(run, 3);
            job.Signal(2);
            job.WaitForError("stopping all 2 ranks after the step under way");
            job.Signal(2);
            var (code, output, error) = job.Wait();
            Assert.Equal(130, code);
            Assert.Contains("Ctrl-C again: quitting at once", error);
            Assert.DoesNotContain("done:", output);
        }
        // The launcher quits at once; mpirun then ends the ranks: wait for that, within the patience of any wait.
        var clock = Stopwatch.StartNew();
        while (RankProcesses(tag).Count > 0)
        {
            Assert.True(clock.Elapsed < TrainerProcess.Patience, "ranks still running after a second Ctrl-C");
            Thread.Sleep(20);
        }
        using var checkpoint = Checkpoint.Load(Path.Combine(run, "checkpoints", "last.ckpt"));
        Assert.InRange(checkpoint.Meta.Step, 2, 4);   // the last one written (step 2's, or the stop's at step 4) is whole
    }

    [Fact]
    public void A_full_disk_on_rank_0_ends_every_rank_with_one_line_naming_the_rank_and_the_file()
    {
        using var dir = new TempDir();
        var tag = Guid.NewGuid().ToString("N");
        var run = new RunFolder(dir["run"]);
        Directory.CreateDirectory(run.Checkpoints);
        // A real ENOSPC from the kernel at the first checkpoint, which rank 0 alone writes.
        File.CreateSymbolicLink(DurableFile.TemporaryFor(run.LastCheckpoint), "/dev/full");
        var (code, _, error) = RunToEnd(new Dictionary<string, string> { ["TRAINER_TEST_TAG"] = tag }, [.. LeNetRun(run.Root), "--nproc", "2"]);
        Assert.Equal(2, code);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("trainer: rank 0: error: disk full while writing " + run.LastCheckpoint, line);
        Assert.Empty(RankProcesses(tag));
    }

    static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Fact]
    public void Fine_tuning_mixed_precision_ema_mixup_label_smoothing_rollback_and_the_study_work_on_two_ranks()
    {
        using var dir = new TempDir();
        // Head-only fine-tuning from saved weights: the frozen tensors (BatchNorm statistics too) stay as they were.
        var weights = dir["pretrained.safetensors"];
        using (var pretrained = Trainer.Models.ModelRegistry.Create("resnet20"))
        using (var file = File.Create(weights))
            SafeTensors.Write(file, Trainer.Models.StateDictOrder.Entries(pretrained).Select(e => new KeyValuePair<string, Tensor>(e.Name, e.Tensor)));
        string[] Small(string folder, params string[] more) =>
        [
            "train", "--out", folder, "--nproc", "2", .. new[]
            {
                "data.subset=128", "data.val_subset=64", "train.batch_size=32", "train.iterations=4",
                "log.histograms=false", "log.image_grid=false", "log.progress=false",
            }.Concat(more).SelectMany(s => new[] { "--set", s }),
        ];
        Succeeded(RunToEnd(Small(dir["head"], $"init.weights={weights}", "init.skip=[]", "finetune.train=head")));
        Dictionary<string, Tensor> before;
        using (var stream = File.OpenRead(weights)) before = SafeTensors.Read(stream, weights);
        var after = LastWeights(dir["head"]);
        foreach (var (name, t) in after)
            if (name.StartsWith("fc.")) Assert.False(t.equal(before[name]).all().item<bool>(), $"{name} did not train");
            else Assert.True(t.equal(before[name]).all().item<bool>(), $"{name} changed although frozen");

        // fp16 with loss scaling, an averaged copy, mixup, label smoothing and rollback on bad numbers, together.
        Succeeded(RunToEnd(Small(dir["mixed"], "train.precision=fp16", "regularization.ema_decay=0.9", "regularization.mixup_alpha=0.2",
            "regularization.label_smoothing=0.1", "train.on_nan=rollback")));
        var final = Summary(dir["mixed"]).GetProperty("final");
        Assert.True(final.TryGetProperty("ema_val_top1", out _), "the averaged copy was evaluated");
        Assert.Equal(4, Summary(dir["mixed"]).GetProperty("steps").GetInt64());

        // The degradation study, each net on 2 ranks.
        var study = dir["study"];
        var r = RunToEnd("study", "depth", "--out", study, "--nproc", "2", "--set", "study.depths=[20]", "--set", "train.iterations=2",
            "--set", "train.batch_size=32", "--set", "log.every_iterations=1");
        Succeeded(r);
        Assert.True(File.Exists(Path.Combine(study, "table.md")), r.Output);
        foreach (var net in new[] { "plain20", "resnet20" })
            Assert.Equal(2, Summary(Path.Combine(study, net)).GetProperty("world_size").GetInt32());
    }

    [Fact]
    public void Bad_nproc_an_uneven_batch_and_a_missing_mpirun_are_one_line_and_exit_code_2()
    {
        using var dir = new TempDir();
        var zero = Cli.Run([.. LeNetRun(dir["zero"]), "--nproc", "0"]);
        Assert.Equal(2, zero.ExitCode);
        Assert.Contains("--nproc", Assert.Single(zero.ErrorLines));

        var uneven = Cli.Run([.. LeNetRun(dir["uneven"]), "--nproc", "3"]);
        Assert.Equal(2, uneven.ExitCode);
        var line = Assert.Single(uneven.ErrorLines);
        Assert.Contains("train.batch_size 64", line);
        Assert.Contains("3 ranks", line);
        Assert.False(Directory.Exists(dir["uneven"]), "nothing is written before the ranks start");

        // A PATH with dotnet and nothing else: no mpirun.
        var bin = Directory.CreateDirectory(dir["bin"]).FullName;
        File.CreateSymbolicLink(Path.Combine(bin, "dotnet"), Environment.ProcessPath!);
        var (code, _, error) = RunToEnd(new Dictionary<string, string> { ["PATH"] = bin + ":/usr/bin/env-only-not-here" },
            [.. LeNetRun(dir["nompi"]), "--nproc", "2"]);
        Assert.Equal(2, code);
        var missing = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("mpirun", missing);
        Assert.Contains("apt-get install", missing);
    }

    /// <summary>The PID of rank <paramref name="rank"/> of the job whose environment carries <paramref name="tag"/>.</summary>
    static int RankProcess(string tag, int rank) =>
        Assert.Single(RankProcesses(tag), p => p.Rank == rank).Pid;

    static List<(int Pid, int Rank)> RankProcesses(string tag)
    {
        var found = new List<(int, int)>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            string[] environment;
            try { environment = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0'); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            if (!environment.Contains($"TRAINER_TEST_TAG={tag}")) continue;
            var rank = environment.FirstOrDefault(v => v.StartsWith("OMPI_COMM_WORLD_RANK=", StringComparison.Ordinal));
            if (rank is not null && IsTrainer(dir)) found.Add((pid, int.Parse(rank.Split('=')[1])));
        }
        return found;
    }

    static bool IsTrainer(string procDir)
    {
        try { return File.ReadAllText(Path.Combine(procDir, "cmdline")).Contains("trainer"); }
        catch (IOException) { return false; }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    static extern int SendSignal(int pid, int signal);
}
