using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SkiaSharp;
using Trainer.Data;
using Trainer.Recipes.Checkpoints;
using Xunit;

namespace Trainer.Tests;

/// <summary>
/// One tiny real run (64 images, 1 epoch, iterations.csv too), finished: the integrity tests damage
/// its checkpoint in every way, the run-folder tests work on copies of its folder.
/// </summary>
public sealed class TinyRunFixture : IDisposable
{
    public static readonly string[] Settings =
        ["data.subset=64", "train.batch_size=32", "train.epochs=1", "data.val_subset=64", "log.histograms=false", "log.image_grid=false", "log.every_iterations=1"];
    public static string[] Args => [.. Settings.SelectMany(s => new[] { "--set", s })];

    readonly TempDir _dir = new();
    public string RunFolder => _dir["run"];
    public string Checkpoint => Path.Combine(RunFolder, "checkpoints", "last.ckpt");
    public Cli.Result Result { get; }

    public TinyRunFixture()
    {
        Result = Cli.Run(["train", "--out", RunFolder, .. Args]);
    }

    /// <summary>A copy of the finished run's folder at <paramref name="target"/>.</summary>
    public void CopyTo(string target)
    {
        Assert.True(Result.ExitCode == 0, Result.Error);
        foreach (var file in Directory.GetFiles(RunFolder, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(target, Path.GetRelativePath(RunFolder, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }
    }

    public void Dispose() => _dir.Dispose();
}

[CollectionDefinition(Name)]
public sealed class TinyRunCollection : ICollectionFixture<TinyRunFixture>
{
    public const string Name = "tiny run";
}

[Collection(TinyRunCollection.Name)]
public class CheckpointIntegrityTests(TinyRunFixture run)
{
    /// <summary>Exit code <paramref name="code"/>, one line on stderr, no stack trace, and every expected part in it.</summary>
    internal static void AssertOneLine(Cli.Result result, int code, params string[] expected)
    {
        Assert.True(result.ExitCode == code, $"exit code {result.ExitCode}, expected {code}: {result.Error}");
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("trainer: error: ", line);
        Assert.DoesNotContain("   at ", result.Error);
        Assert.DoesNotContain("internal error", line);
        foreach (var part in expected) Assert.Contains(part, line);
    }

    byte[] Good()
    {
        Assert.True(run.Result.ExitCode == 0, run.Result.Error);
        return File.ReadAllBytes(run.Checkpoint);
    }

    [Fact]
    public void A_checkpoint_is_format_2_with_the_sha256_of_every_entry_and_a_seal_over_the_whole_file()
    {
        var bytes = Good();
        using (var zip = ZipFile.OpenRead(run.Checkpoint))
        {
            var entries = zip.Entries.ToDictionary(e => e.FullName, e => { using var s = e.Open(); using var m = new MemoryStream(); s.CopyTo(m); return m.ToArray(); });
            Assert.Equal("trainer-checkpoint/2", JsonNode.Parse(entries["meta.json"])!["format"]!.GetValue<string>());
            var sums = JsonNode.Parse(entries["checksums.json"])!;
            Assert.Equal("sha256", sums["algorithm"]!.GetValue<string>());
            var listed = sums["entries"]!.AsObject();
            Assert.Equal(entries.Keys.Where(k => k != "checksums.json").Order(), listed.Select(p => p.Key).Order());
            foreach (var (name, hex) in listed)
                Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(entries[name])), hex!.GetValue<string>());
        }
        var seal = Encoding.ASCII.GetString(bytes[^79..]);
        Assert.StartsWith("trainer-sha256:", seal);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan(0, bytes.Length - 64))), seal["trainer-sha256:".Length..]);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(run.Checkpoint)!, "*.tmp"));
    }

    [Fact]
    public void A_byte_flipped_anywhere_or_a_cut_anywhere_is_refused_naming_the_file()
    {
        var good = Good();
        using var dir = new TempDir();
        var path = dir["damaged.ckpt"];
        var positions = Enumerable.Range(0, 120).Select(i => (long)i * good.Length / 120)
            .Concat([1, 8, 30, good.Length - 1, good.Length - 40, good.Length - 70, good.Length - 85, good.Length - 100, good.Length - 200]).Distinct();
        long tensorsBefore = TensorsMadeOnThisThread();
        foreach (var position in positions)
        {
            var damaged = (byte[])good.Clone();
            damaged[position] ^= 0x5A;
            File.WriteAllBytes(path, damaged);
            var e = Assert.Throws<BadInputException>(() => Checkpoint.Load(path).Dispose());
            Assert.Contains(path, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        foreach (var length in new[] { 0, 10, good.Length / 3, good.Length / 2, good.Length - 80, good.Length - 1 })
        {
            File.WriteAllBytes(path, good[..length]);
            var e = Assert.Throws<BadInputException>(() => Checkpoint.Load(path).Dispose());
            Assert.Contains(path, e.Message);
        }
        // Refused before the first tensor was made.
        Assert.Equal(tensorsBefore, TensorsMadeOnThisThread());
    }

    /// <summary>
    /// Tensors created on this thread so far (where Checkpoint.Load makes its tensors). Not the
    /// process-wide live count: a finalizer may free a tensor of an earlier test at any moment.
    /// </summary>
    static long TensorsMadeOnThisThread()
    {
        var made = TorchSharp.DisposeScopeManager.Statistics.TensorStatistics;
        return made.CreatedInScopeCount + made.CreatedOutsideScopeCount;
    }

    [Fact]
    public void Truncated_corrupted_and_foreign_checkpoints_are_one_line_and_exit_2_for_every_verb()
    {
        var good = Good();
        using var dir = new TempDir();
        var bad = new Dictionary<string, byte[]>
        {
            ["truncated.ckpt"] = good[..(good.Length / 2)],
            ["flipped.ckpt"] = Flip(good, good.Length / 2),
            ["text.ckpt"] = Encoding.UTF8.GetBytes("not a checkpoint at all"),
            ["nometa.ckpt"] = ZipOf(("model.safetensors", Encoding.UTF8.GetBytes("x")), ("readme.txt", Encoding.UTF8.GetBytes("hello"))),
        };
        foreach (var (name, bytes) in bad) File.WriteAllBytes(dir[name], bytes);
        // A PyTorch state_dict renamed .ckpt: importable (import reads by content), but no checkpoint.
        Assert.Equal(0, Cli.Run("export", "--checkpoint", run.Checkpoint, "--out", dir["weights.pth"]).ExitCode);
        File.Move(dir["weights.pth"], dir["pytorch.ckpt"]);
        Directory.CreateDirectory(dir["images"]);
        WritePng(dir["images/a.png"]);

        foreach (var name in bad.Keys.Append("pytorch.ckpt"))
        {
            var file = dir[name];
            AssertOneLine(Cli.Run("eval", "--checkpoint", file), 2, file);
            AssertOneLine(Cli.Run("predict", "--checkpoint", file, "--images", dir["images"], "--out", dir["p.csv"]), 2, file);
            if (name != "pytorch.ckpt") AssertOneLine(Cli.Run("import", "--from", file, "--model", "resnet20", "--out", dir["imported.ckpt"]), 2, file);
            Assert.False(File.Exists(dir["imported.ckpt"]));
            Assert.False(File.Exists(dir["p.csv"]));

            // The same file as a run's last checkpoint.
            var folder = dir["run-" + name];
            Directory.CreateDirectory(Path.Combine(folder, "checkpoints"));
            File.Copy(Path.Combine(run.RunFolder, "config.yaml"), Path.Combine(folder, "config.yaml"));
            File.Copy(file, Path.Combine(folder, "checkpoints", "last.ckpt"));
            AssertOneLine(Cli.Run("train", "--out", folder, "--resume", "--set", "train.epochs=2"), 2, Path.Combine(folder, "checkpoints", "last.ckpt"));
            Assert.False(File.Exists(Path.Combine(folder, "metrics.csv")));
        }
        AssertOneLine(Cli.Run("eval", "--checkpoint", dir["pytorch.ckpt"]), 2, "PyTorch file", "trainer import");
        AssertOneLine(Cli.Run("eval", "--checkpoint", dir["nometa.ckpt"]), 2, "without meta.json");
        AssertOneLine(Cli.Run("eval", "--checkpoint", dir["flipped.ckpt"]), 2, "damaged");
    }

    [Fact]
    public void A_format_1_checkpoint_without_checksums_still_loads_and_evaluates()
    {
        Good();
        using var dir = new TempDir();
        Rewrite(run.Checkpoint, dir["v1.ckpt"], "trainer-checkpoint/1");
        using (var v1 = Checkpoint.Load(dir["v1.ckpt"]))
        using (var v2 = Checkpoint.Load(run.Checkpoint))
        {
            Assert.Equal("trainer-checkpoint/1", v1.Meta.Format);
            Assert.Equal(v2.Model.Keys.Order(), v1.Model.Keys.Order());
            foreach (var (name, t) in v2.Model) Assert.True(t.eq(v1.Model[name]).all().item<bool>(), $"{name} differs");
        }
        var eval = Cli.Run("eval", "--checkpoint", dir["v1.ckpt"], "--json");
        Assert.True(eval.ExitCode == 0, eval.Error);
        Assert.Contains("\"samples\":1000", eval.Output);
    }

    [Fact]
    public void A_newer_or_unknown_format_is_refused_saying_so()
    {
        Good();
        using var dir = new TempDir();
        Rewrite(run.Checkpoint, dir["v3.ckpt"], "trainer-checkpoint/3");
        AssertOneLine(Cli.Run("eval", "--checkpoint", dir["v3.ckpt"]), 2, dir["v3.ckpt"], "trainer-checkpoint/3", "newer trainer");
        Rewrite(run.Checkpoint, dir["odd.ckpt"], "something-else/1");
        AssertOneLine(Cli.Run("eval", "--checkpoint", dir["odd.ckpt"]), 2, dir["odd.ckpt"], "unknown format 'something-else/1'");
        // A format-2 file must carry its checksums.
        Rewrite(run.Checkpoint, dir["unsealed.ckpt"], "trainer-checkpoint/2");
        AssertOneLine(Cli.Run("eval", "--checkpoint", dir["unsealed.ckpt"]), 2, dir["unsealed.ckpt"], "damaged");
    }

    [Fact]
    public void Safetensors_headers_are_checked_before_any_tensor_exists()
    {
        static byte[] File(string header, int dataBytes)
        {
            var json = Encoding.UTF8.GetBytes(header);
            var bytes = new byte[8 + json.Length + dataBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
            json.CopyTo(bytes, 8);
            return bytes;
        }
        var cases = new Dictionary<string, byte[]>
        {
            ["dtype"] = File("""{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", 2),
            ["bytes for shape"] = File("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8),
            ["outside"] = File("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4),
            ["impossible shape"] = File("""{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}""", 8),
            ["overlap"] = File("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8),
            ["cover"] = File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 8),
            ["whole number"] = File("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4),
            ["twice"] = File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8),
            ["not a JSON object"] = File("""[1,2]""", 0),
            ["not valid JSON"] = File("""{"a":""", 0),
            ["runs past"] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, (byte)'{', (byte)'}'],
            ["data_offsets"] = File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}""", 4),
        };
        foreach (var (reason, bytes) in cases)
        {
            var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Layout(bytes, "x.safetensors"));
            Assert.Contains(reason, e.Message);
        }
        // Through `trainer import`, a damaged .safetensors is one line and exit code 2.
        using var dir = new TempDir();
        System.IO.File.WriteAllBytes(dir["bad.safetensors"], cases["impossible shape"]);
        AssertOneLine(Cli.Run("import", "--from", dir["bad.safetensors"], "--model", "resnet20", "--out", dir["x.ckpt"]), 2, dir["bad.safetensors"]);
        // A sound file still reads.
        var sound = File("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}""", 16);
        var tensors = SafeTensors.Read(sound, "ok");
        Assert.Equal([2L], tensors["a"].shape);
        Assert.Empty(tensors["b"].shape);
        foreach (var t in tensors.Values) t.Dispose();
    }

    static byte[] Flip(byte[] bytes, int position)
    {
        var copy = (byte[])bytes.Clone();
        copy[position] ^= 0xFF;
        return copy;
    }

    static byte[] ZipOf(params (string Name, byte[] Bytes)[] entries)
    {
        using var memory = new MemoryStream();
        using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, bytes) in entries)
            {
                using var stream = zip.CreateEntry(name).Open();
                stream.Write(bytes);
            }
        return memory.ToArray();
    }

    /// <summary>The checkpoint's entries, without checksums.json or the seal, with meta.json's format replaced: how a format-1 file (or a future one) looks.</summary>
    internal static void Rewrite(string from, string to, string format)
    {
        using var source = ZipFile.OpenRead(from);
        var entries = new List<(string, byte[])>();
        foreach (var entry in source.Entries.Where(e => e.FullName != CheckpointArchive.ChecksumsEntry))
        {
            using var stream = entry.Open();
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            var bytes = memory.ToArray();
            if (entry.FullName == "meta.json")
            {
                var meta = JsonNode.Parse(bytes)!;
                meta["format"] = format;
                bytes = Encoding.UTF8.GetBytes(meta.ToJsonString());
            }
            entries.Add((entry.FullName, bytes));
        }
        File.WriteAllBytes(to, ZipOf([.. entries]));
    }

    static void WritePng(string path)
    {
        using var bitmap = new SKBitmap(32, 32);
        bitmap.Erase(SKColors.CornflowerBlue);
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, png.ToArray());
    }
}
