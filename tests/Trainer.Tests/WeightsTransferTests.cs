using Trainer.Models;
using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Config;
using Trainer.Recipes.Runs;
using Trainer.Recipes.Weights;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>trainer import / export against PyTorch: tensors bit-identical, logits equal, every bad weights file refused in one line.</summary>
public class WeightsTransferTests
{
    /// <summary>torchvision weights and bad files made once by transfer_reference.py.</summary>
    public sealed class PyTorchFiles : IDisposable
    {
        readonly TempDir _dir = new();
        public PyTorchFiles() => Python.Run("transfer_reference.py", "make", _dir.Path);
        public string this[string name] => _dir[name];
        public void Dispose() => _dir.Dispose();
    }

    static ClassifierModel LoadModel(string checkpointPath)
    {
        using var c = Checkpoint.Load(checkpointPath);
        var config = ConfigLoader.FromYaml(c.Meta.ConfigYaml, checkpointPath);
        var model = RunModel.Create(config, c.Meta.NumClasses);
        SessionCheckpoint.LoadModel(model, c, checkpointPath);
        model.eval();
        return model;
    }

    static float MaxDifference(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    public class Import(PyTorchFiles files) : IClassFixture<PyTorchFiles>
    {
        [Fact]
        public void A_torchvision_state_dict_imports_with_pytorchs_logits_and_exports_bit_identical()
        {
            using var dir = new TempDir();
            var imported = Cli.Run("import", "--from", files["r18.pth"], "--model", "resnet18", "--out", dir["r18.ckpt"]);
            Assert.True(imported.ExitCode == 0, imported.Error);
            Assert.Contains("7 classes", imported.Output);

            var reference = PyTorchFormat.Read(files["inputs.pth"]);
            using var model = LoadModel(dir["r18.ckpt"]);
            using (no_grad())
            {
                using var logits = model.call(reference["x"]);
                Assert.True(MaxDifference(logits, reference["logits"]) < 1e-4f, $"logits differ from PyTorch's by {MaxDifference(logits, reference["logits"])}");
            }
            using (var c = Checkpoint.Load(dir["r18.ckpt"]))
            {
                Assert.Equal(17, c.Model["bn1.num_batches_tracked"].item<long>());
                Assert.Equal(["0", "1", "2", "3", "4", "5", "6"], c.Meta.Classes);
                Assert.Contains("r18.pth", c.Meta.ImportedFrom);
            }

            var exported = Cli.Run("export", "--checkpoint", dir["r18.ckpt"], "--out", dir["back.pth"]);
            Assert.True(exported.ExitCode == 0, exported.Error);
            Assert.Equal("same-keys-and-order True bit-identical True", Python.Run("transfer_reference.py", "check", dir["back.pth"], files["r18.pth"]).Trim());
        }

        [Fact]
        public void Safetensors_and_trainer_checkpoints_import_to_the_same_tensors()
        {
            using var dir = new TempDir();
            Assert.Equal(0, Cli.Run("import", "--from", files["r18.pth"], "--model", "resnet18", "--out", dir["a.ckpt"]).ExitCode);
            Assert.Equal(0, Cli.Run("export", "--checkpoint", dir["a.ckpt"], "--out", dir["a.safetensors"]).ExitCode);
            var fromSafetensors = Cli.Run("import", "--from", dir["a.safetensors"], "--model", "resnet18", "--out", dir["b.ckpt"]);
            Assert.True(fromSafetensors.ExitCode == 0, fromSafetensors.Error);
            var fromCheckpoint = Cli.Run("import", "--from", dir["b.ckpt"], "--model", "resnet18", "--out", dir["c.ckpt"]);
            Assert.True(fromCheckpoint.ExitCode == 0, fromCheckpoint.Error);
            using var a = Checkpoint.Load(dir["a.ckpt"]);
            using var c = Checkpoint.Load(dir["c.ckpt"]);
            Assert.Equal(a.Model.Keys.Order(), c.Model.Keys.Order());
            foreach (var (name, t) in a.Model) Assert.True(t.eq(c.Model[name]).all().item<bool>(), name);
        }

        [Fact]
        public void A_checkpoint_nested_state_dict_with_dataparallel_prefixes_is_read()
        {
            using var dir = new TempDir();
            var tensors = PyTorchFormat.Read(files["r18.pth"]);
            PyTorchFormat.Write(dir["module.pth"], tensors.Select(kv => ("module." + kv.Key, kv.Value)));
            var read = PyTorchFormat.Read(dir["module.pth"]);
            Assert.Equal(tensors.Keys.Order(), read.Keys.Order());
        }

        public static TheoryData<string, string, string> BadFiles => new()
        {
            { "r18_legacy.pth", "resnet18", "legacy serialization format" },
            { "r18_script.pt", "resnet18", "TorchScript archive" },
            { "evil.pth", "resnet18", "holds a Python object (posix.system), not only tensors and plain containers; refused, nothing in it was run" },
            { "mobilenet.pth", "resnet18", "do not fit model resnet18: " },
            { "r18.pth", "resnet34", "missing key 'layer1.2.conv1.weight' [64, 64, 3, 3]" },
            { "r18.pth", "resnet50", "shape of 'layer1.0.conv1.weight': file [64, 64, 3, 3], model [64, 64, 1, 1]" },
            { "truncated.pth", "resnet18", "truncated.pth" },
            { "notes.txt", "resnet18", "is not a weights file trainer reads" },
            { "missing.pth", "resnet18", "does not exist" },
            { "r18.pth", "resnet19", "unknown model 'resnet19'" },
        };

        [Theory]
        [MemberData(nameof(BadFiles))]
        public void A_bad_weights_file_is_one_line_and_exit_2(string file, string model, string expected)
        {
            using var dir = new TempDir();
            var source = files[file];
            if (file == "truncated.pth")
            {
                var bytes = File.ReadAllBytes(files["r18.pth"]);
                File.WriteAllBytes(source = dir["truncated.pth"], bytes[..(bytes.Length / 2)]);
            }
            if (file == "notes.txt") File.WriteAllText(source = dir["notes.txt"], "not weights\n");
            File.WriteAllText(dir["out.ckpt"], "saved before");
            var r = Cli.Run("import", "--from", source, "--model", model, "--out", dir["out.ckpt"]);
            Assert.Equal(2, r.ExitCode);
            Assert.Single(r.ErrorLines);
            Assert.Contains(expected, r.Error);
            Assert.Equal("saved before", File.ReadAllText(dir["out.ckpt"]));
            Assert.False(File.Exists(files["pwned"]), "unpickling ran the command the file carried");
        }
    }
}
