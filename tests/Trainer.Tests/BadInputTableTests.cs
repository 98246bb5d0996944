using Xunit;
using Xunit.Abstractions;

namespace Trainer.Tests;

/// <summary>The files bad_input_fixtures.py writes, once for the whole table.</summary>
public sealed class BadInputFixtures : IDisposable
{
    readonly TempDir _dir = new();
    public BadInputFixtures() => Python.Run("bad_input_fixtures.py", _dir.Path);
    public string Path => _dir.Path;
    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// docs/reliability.md, "Bad input": every row is a bad file, folder or command line, and each gets
/// exit code 2, one line on stderr naming the file or key, no stack trace, and leaves every file
/// that was there before with its bytes (and, unless the run had started, writes nothing at all).
/// </summary>
public sealed class BadInputTableTests(BadInputFixtures fixtures, ITestOutputHelper log) : IClassFixture<BadInputFixtures>
{
    /// <summary>
    /// One row: <c>Prepare</c> writes the bad input into the test's folder; <c>Args</c> and
    /// <c>Expect</c> may say {dir} (that folder) and {fx} (the crafted files). <c>StartsRun</c>:
    /// the problem shows only once training reads the file, so the new run folder may hold files.
    /// </summary>
    public sealed record Row(Action<Setup> Prepare, string[] Args, string[] Expect, bool StartsRun = false);

    public sealed class Setup(string dir, string fx)
    {
        public void Text(string path, string text) => File.WriteAllText(Full(path), text);
        public void Bytes(string path, byte[] bytes) => File.WriteAllBytes(Full(path), bytes);
        public void Folder(string path) => Directory.CreateDirectory(Full(path));
        public void Copy(string fixture, string path) => File.Copy(System.IO.Path.Combine(fx, fixture), Full(path));

        /// <summary>What the row holds while the command runs (a run folder's lock), released after it.</summary>
        public List<IDisposable> Held { get; } = new();

        /// <summary>Holds <paramref name="path"/>'s run lock, as a trainer process writing it does.</summary>
        public void Lock(string path) => Held.Add(Recipes.Runs.RunLock.Acquire(Full(path)));

        /// <summary>A finished one-epoch run of the embedded sample in <paramref name="path"/>.</summary>
        public void FinishedRun(string path)
        {
            var r = Cli.Run("train", "--out", Full(path), "--set", "data.subset=32", "--set", "train.batch_size=32", "--set", "train.epochs=1",
                "--set", "data.val_subset=32", "--set", "log.histograms=false", "--set", "log.image_grid=false");
            Assert.True(r.ExitCode == 0, r.Error);
        }

        /// <summary>train/a and train/b with one good image each plus <paramref name="bad"/> in train/a; val the same without it.</summary>
        public void ImageFolder(string bad)
        {
            foreach (var split in new[] { "train", "val" })
            {
                Copy("good.jpg", $"images/{split}/a/good.jpg");
                Copy("good2.jpg", $"images/{split}/b/good2.jpg");
            }
            Copy(bad, $"images/train/a/{bad}");
        }

        string Full(string path)
        {
            var full = System.IO.Path.Combine(dir, path);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
            return full;
        }
    }

    static readonly string[] Train = ["train", "--out", "{dir}/run"];
    static readonly string[] ImageRun = [.. Train, "--set", "data.name=imagefolder", "--set", "data.root={dir}/images", "--set", "data.image_size=32",
        "--set", "data.resize_size=36", "--set", "data.workers=1", "--set", "train.batch_size=8", "--set", "train.epochs=1", "--set", "data.skip_bad_images=false"];
    static readonly string[] Cifar10 = [.. Train, "--set", "data.name=cifar10", "--set", "data.root={dir}/cifar"];
    static string[] Import(string from) => ["import", "--from", from, "--model", "resnet20", "--out", "{dir}/out.ckpt"];
    static void SavedOut(Setup s) => s.Text("out.ckpt", "saved before");
    static void Nothing(Setup s) { }

    /// <summary>A few lines of YAML that stand for 10^<paramref name="levels"/> values: each list holds ten aliases of the one before.</summary>
    static string AliasBomb(int levels)
    {
        var yaml = new System.Text.StringBuilder("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i < levels; i++) yaml.Append($"l{i}: &l{i} [{string.Join(", ", Enumerable.Repeat($"*l{i - 1}", 10))}]\n");
        return yaml.ToString();
    }

    static byte[] CifarRecords(int count, byte label)
    {
        var bytes = new byte[3073 * count];
        for (int i = 0; i < count; i++) bytes[i * 3073] = label;
        return bytes;
    }

    public static readonly Dictionary<string, Row> Rows = new()
    {
        // Configs and command lines
        ["malformed_yaml"] = new(s => s.Text("c.yaml", "model: resnet20\ntrain:\n  epochs: 3\n batch_size: 8\n"),
            ["train", "--config", "{dir}/c.yaml", "--out", "{dir}/run"], ["{dir}/c.yaml: not valid YAML at line 4, column 2"]),
        ["yaml_top_level_not_a_mapping"] = new(s => s.Text("c.yaml", "- model\n- resnet20\n"),
            ["train", "--config", "{dir}/c.yaml", "--out", "{dir}/run"], ["{dir}/c.yaml: the top level must be a mapping of keys"]),
        ["yaml_duplicate_key"] = new(s => s.Text("c.yaml", "model: resnet20\nmodel: resnet56\n"),
            ["train", "--config", "{dir}/c.yaml", "--out", "{dir}/run"], ["{dir}/c.yaml: not valid YAML at line 2, column 1: Duplicate key model"]),
        ["yaml_list_as_key"] = new(s => s.Text("c.yaml", "model: resnet20\n? [a, b]\n: 1\n"),
            ["train", "--config", "{dir}/c.yaml", "--out", "{dir}/run"], ["{dir}/c.yaml: line 2, column 3: a key must be a plain name"]),
        ["yaml_alias_bomb"] = new(s => s.Text("c.yaml", AliasBomb(levels: 9)),
            ["train", "--config", "{dir}/c.yaml", "--out", "{dir}/run"], ["{dir}/c.yaml: more than 100,000 values"]),
        ["unknown_key"] = new(s => s.Text("c.yaml", "model: resnet20\ntrain:\n  epochz: 3\n"),
            ["train", "--config", "{dir}/c.yaml", "--out", "{dir}/run"], ["{dir}/c.yaml: unknown key 'train.epochz'"]),
        ["wrong_type"] = new(Nothing, [.. Train, "--set", "train.batch_size=big"], ["key 'train.batch_size' expects an integer, got 'big'"]),
        ["negative_lr"] = new(Nothing, [.. Train, "--set", "optimizer.lr=-0.1"], ["optimizer.lr must be above 0"]),
        ["batch_size_zero"] = new(Nothing, [.. Train, "--set", "train.batch_size=0"], ["train.batch_size must be above 0"]),
        ["unknown_model"] = new(Nothing, [.. Train, "--set", "model=resnet21"], ["unknown model 'resnet21'"]),
        ["unknown_data_set"] = new(Nothing, [.. Train, "--set", "data.name=mnist"], ["data.name must be cifar10, cifar100, cifar10-sample or imagefolder, got 'mnist'"]),
        ["config_missing"] = new(Nothing, ["train", "--config", "{dir}/none.yaml", "--out", "{dir}/run"], ["config file {dir}/none.yaml does not exist"]),
        ["config_is_a_folder"] = new(s => s.Folder("c.yaml"), ["train", "--config", "{dir}/c.yaml", "--out", "{dir}/run"], ["config file {dir}/c.yaml is a folder, not a file"]),
        ["config_unreadable"] = new(Nothing, ["train", "--config", "/proc/self/mem", "--out", "{dir}/run"], ["config file /proc/self/mem cannot be read"]),
        ["set_without_value"] = new(Nothing, [.. Train, "--set", "train.epochs"], ["--set train.epochs: expected KEY=VALUE"]),
        ["unknown_verb"] = new(Nothing, ["fly"], ["unknown verb 'fly'"]),
        ["unknown_option"] = new(Nothing, ["train", "--epochs", "3"], ["'trainer train': unknown option --epochs"]),
        ["missing_option_value"] = new(Nothing, ["train", "--out"], ["'trainer train': --out needs a value"]),
        ["non_positive_count"] = new(Nothing, ["bench", "--model", "resnet20", "--steps", "0"], ["--steps expects a positive integer, got '0'"]),

        // Data
        ["missing_data_folder"] = new(Nothing, Cifar10, ["data folder {dir}/cifar does not exist"]),
        ["no_cifar_files"] = new(s => s.Folder("cifar"), Cifar10, ["no cifar10 training files in {dir}/cifar"]),
        ["truncated_cifar_batch"] = new(s => { s.Bytes("cifar/data_batch_1.bin", CifarRecords(3, 0)[..^1]); s.Bytes("cifar/test_batch.bin", CifarRecords(1, 0)); },
            Cifar10, ["{dir}/cifar/data_batch_1.bin: 9218 bytes is not a whole number of cifar10 records"]),
        ["cifar_label_out_of_range"] = new(s => { s.Bytes("cifar/data_batch_1.bin", CifarRecords(2, 200)); s.Bytes("cifar/test_batch.bin", CifarRecords(1, 0)); },
            Cifar10, ["{dir}/cifar/data_batch_1.bin: record 0 has label 200, but cifar10 has 10 classes"]),
        ["image_folder_without_classes"] = new(s => s.Folder("images"), ImageRun, ["{dir}/images holds no class folders"]),
        ["empty_class_folder"] = new(s => { s.Copy("good.jpg", "images/a/good.jpg"); s.Folder("images/b"); }, ImageRun,
            ["class folder {dir}/images/b holds no .jpg, .jpeg or .png images"]),
        ["non_image_file"] = new(s => s.ImageFolder("notimage.jpg"), ImageRun, ["{dir}/images/train/a/notimage.jpg is not a readable image"], StartsRun: true),
        ["truncated_jpeg"] = new(s => s.ImageFolder("truncated.jpg"), ImageRun, ["{dir}/images/train/a/truncated.jpg is truncated or corrupt (IncompleteInput)"], StartsRun: true),
        ["giant_png_header"] = new(s => s.ImageFolder("giant.png"), ImageRun, ["{dir}/images/train/a/giant.png declares 100000x100000 pixels"], StartsRun: true),
        ["giant_jpeg_header"] = new(s => s.ImageFolder("giant.jpg"), ImageRun, ["{dir}/images/train/a/giant.jpg declares 65000x65000 pixels"], StartsRun: true),

        // Weights and checkpoints
        ["weights_of_another_architecture"] = new(SavedOut, Import("{fx}/other_arch.pth"), ["{fx}/other_arch.pth", "do not fit model resnet20"]),
        ["legacy_pytorch_file"] = new(SavedOut, Import("{fx}/legacy.pth"), ["{fx}/legacy.pth is in PyTorch's legacy serialization format"]),
        ["pickle_that_runs_code"] = new(SavedOut, Import("{fx}/evil.pth"), ["{fx}/evil.pth holds a Python object (posix.system)", "nothing in it was run"]),
        ["pth_zip_entry_claims_4gb"] = new(SavedOut, Import("{fx}/huge_claim.pth"), ["{fx}/huge_claim.pth: zip entry 'small/data/0' declares 4,294,967,280 bytes"]),
        ["pth_tensor_shape_past_its_storage"] = new(SavedOut, Import("{fx}/huge_shape.pth"),
            ["{fx}/huge_shape.pth: a tensor of shape [100000, 100000] reaches element 9,999,999,999 of storage 'data/0', which has 4; refused before allocating"]),
        ["pth_storage_past_its_entry"] = new(SavedOut, Import("{fx}/huge_storage.pth"),
            ["{fx}/huge_storage.pth: storage 'data/0' declares 1,000,000,000 elements of FloatStorage (4,000,000,000 bytes) but its entry holds 16 bytes"]),
        ["safetensors_shape_past_its_data"] = new(SavedOut, Import("{fx}/huge_shape.safetensors"), ["{fx}/huge_shape.safetensors", "has 16 bytes for shape [100000, 100000, 100] F32"]),
        ["weights_file_is_a_folder"] = new(s => { SavedOut(s); s.Folder("w.pth"); }, Import("{dir}/w.pth"), ["weights file {dir}/w.pth is a folder, not a file"]),
        ["checkpoint_zip_entry_claims_4gb"] = new(Nothing, ["eval", "--checkpoint", "{fx}/huge_claim.ckpt"], ["{fx}/huge_claim.ckpt: zip entry 'model.safetensors' declares 4,294,967,280 bytes"]),
        ["checkpoint_not_a_zip"] = new(s => s.Text("bad.ckpt", "not a zip"), ["eval", "--checkpoint", "{dir}/bad.ckpt"], ["checkpoint {dir}/bad.ckpt is not a readable trainer checkpoint"]),

        // Run folders and outputs
        ["resume_an_empty_folder"] = new(s => s.Folder("run"), ["train", "--resume", "--out", "{dir}/run"], ["cannot resume: {dir}/run/checkpoints/last.ckpt does not exist"]),
        ["resume_a_file"] = new(s => s.Text("run", "a file"), ["train", "--resume", "--out", "{dir}/run"], ["{dir}/run is a file, not a run folder"]),
        ["out_is_a_file"] = new(s => s.Text("run", "a file"), Train, ["{dir}/run is a file, not a run folder"]),
        ["out_below_a_file"] = new(s => s.Text("file", "a file"), ["train", "--out", "{dir}/file/run"], ["{dir}/file/run cannot be a run folder: {dir}/file is a file"]),
        ["out_holds_a_run"] = new(s => { s.Text("run/metrics.csv", "precious"); s.Text("run/checkpoints/last.ckpt", "precious too"); }, Train,
            ["{dir}/run already holds a run: add --resume"]),
        ["run_folder_in_use"] = new(s => { s.Folder("run"); s.Lock("run"); }, Train, ["{dir}/run is in use by another trainer process"]),
        ["resume_a_finished_run"] = new(s => s.FinishedRun("run"), ["train", "--resume", "--out", "{dir}/run"],
            ["{dir}/run finished (epoch 1 of 1); to train it longer: trainer train --out {dir}/run --resume --set train.epochs=M"]),
        ["predict_out_is_a_folder"] = new(s => s.Folder("pred.csv"), ["predict", "--checkpoint", "{dir}/none.ckpt", "--images", "{dir}", "--out", "{dir}/pred.csv"],
            ["--out {dir}/pred.csv is a folder"]),
    };

    public static IEnumerable<object[]> Names() => Rows.Keys.Select(name => new object[] { name });

    [Theory]
    [MemberData(nameof(Names))]
    public void Bad_input_is_one_line_exit_2_and_overwrites_nothing(string name)
    {
        var row = Rows[name];
        using var dir = new TempDir();
        string Fill(string text) => text.Replace("{dir}", dir.Path).Replace("{fx}", fixtures.Path);
        var setup = new Setup(dir.Path, fixtures.Path);
        row.Prepare(setup);
        var before = Snapshot(dir.Path);

        var result = Cli.Run(row.Args.Select(Fill).ToArray());
        log.WriteLine($"{name}: {result.Error.Replace(dir.Path, "DIR").Replace(fixtures.Path, "FX").Trim()}");

        Assert.True(result.ExitCode == 2, $"exit code {result.ExitCode}: {result.Error}");
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("trainer: error: ", line);
        Assert.DoesNotContain("Exception", result.Error);
        Assert.DoesNotContain("   at ", result.Error);
        foreach (var part in row.Expect) Assert.Contains(Fill(part), line);

        var after = Snapshot(dir.Path);
        foreach (var held in setup.Held) held.Dispose();
        foreach (var (path, bytes) in before)
        {
            Assert.True(after.TryGetValue(path, out var now), $"{path} was removed");
            Assert.True(bytes is null ? now is null : now is not null && bytes.AsSpan().SequenceEqual(now), $"{path} was changed");
        }
        if (!row.StartsRun) Assert.Equal(before.Keys.Order(), after.Keys.Order());
        Assert.False(File.Exists(Path.Combine(fixtures.Path, "pwned")), "unpickling ran the command the file carried");
    }

    [Fact]
    public void The_size_checks_let_real_and_honest_files_through()
    {
        // other_arch.pth, small.pth and many.pth are torch.save's own; crafted_ok.pth comes from the code that crafts the bad ones.
        using var scope = TorchSharp.torch.NewDisposeScope();
        Assert.Equal(4, Recipes.Weights.PyTorchFormat.Read(Path.Combine(fixtures.Path, "other_arch.pth")).Count);
        Assert.Equal([0f, 1, 2, 3], Recipes.Weights.PyTorchFormat.Read(Path.Combine(fixtures.Path, "small.pth"))["w"].data<float>().ToArray());
        Assert.Equal([2L, 2], Recipes.Weights.PyTorchFormat.Read(Path.Combine(fixtures.Path, "crafted_ok.pth"))["w"].shape);
        var many = Recipes.Weights.PyTorchFormat.Read(Path.Combine(fixtures.Path, "many.pth"));
        Assert.Equal(301, many.Count);
        Assert.Equal(299f, many["t299"][4].item<float>());
        Assert.Equal(70000L, many["big"].shape[0]);
    }

    /// <summary>Every file (with its bytes; a run lock with none) and folder (null) under <paramref name="root"/>.</summary>
    static Dictionary<string, byte[]?> Snapshot(string root) =>
        Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
            .ToDictionary(p => p, p => Directory.Exists(p) ? null
                // A held lock file cannot be read; it only has to stay where it is.
                : Path.GetFileName(p) == Recipes.Runs.RunLock.FileName ? [] : File.ReadAllBytes(p));
}
