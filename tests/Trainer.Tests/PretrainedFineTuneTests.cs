using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Weights;
using Trainer.Recipes.Weights.Onnx;
using Xunit;

namespace Trainer.Tests;

/// <summary>The NuGet ResNet-18 end to end: import, a fine-tuning run that keeps its input normalisation, eval, predict, export to PyTorch.</summary>
public class PretrainedFineTuneTests
{
    [Fact]
    public void The_nuget_resnet18_imports_fine_tunes_with_its_own_normalisation_and_exports_to_torchvision()
    {
        using var dir = new TempDir();
        var imported = Cli.Run("import", "--from", WeightsFile.NuGetResNet18, "--model", "mlnet_resnet18", "--out", dir["pretrained.ckpt"]);
        Assert.True(imported.ExitCode == 0, imported.Error);
        Assert.Contains("features only", imported.Output);
        Assert.Contains("BGR in [0, 255]", imported.Output);
        var refused = Cli.Run("eval", "--checkpoint", dir["pretrained.ckpt"]);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("holds features only", refused.Error);

        // Init straight from the ONNX file: the same weights as the imported checkpoint.
        var imagenette = Path.Combine(TestPaths.SharedData, "imagenette-160");
        var run = Cli.Run("train", "--out", dir["run"], "--set", "model=mlnet_resnet18", "--set", $"init.weights={PretrainedPackages.MlNetResNet18.Require()}",
            "--set", "finetune.train=head", "--set", "data.name=imagefolder", "--set", $"data.root={imagenette}", "--set", "data.per_class=3",
            "--set", "data.val_subset=20", "--set", "data.image_size=64", "--set", "data.resize_size=73", "--set", "train.batch_size=15",
            "--set", "train.epochs=1", "--set", "optimizer.lr=0.01", "--set", "log.histograms=false", "--set", "log.image_grid=false");
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("input BGR in [0, 255], mean 103.063/115.903/123.152, std 1/1/1", run.Output);
        using (var trained = Checkpoint.Load(dir["run/checkpoints/last.ckpt"]))
        using (var pretrained = Checkpoint.Load(dir["pretrained.ckpt"]))
        {
            Assert.True(trained.Meta.NormalizationBgr);
            Assert.Equal(255, trained.Meta.NormalizationScale);
            Assert.Equal(pretrained.Meta.NormalizationMean, trained.Meta.NormalizationMean);
            foreach (var (name, t) in pretrained.Model)
                Assert.True(t.eq(trained.Model[name]).all().item<bool>(), $"{name} changed although frozen");
            Assert.Equal([10, 512], trained.Model["fc.weight"].shape);
        }
        var evaluated = Cli.Run("eval", "--checkpoint", dir["run/checkpoints/last.ckpt"], "--json");
        Assert.True(evaluated.ExitCode == 0, evaluated.Error);
        var predicted = Cli.Run("predict", "--checkpoint", dir["run/checkpoints/last.ckpt"], "--images", Path.Combine(imagenette, "val", "n01440764"), "--out", dir["p.csv"]);
        Assert.True(predicted.ExitCode == 0, predicted.Error);
        Assert.Equal(51, File.ReadAllLines(dir["p.csv"]).Length);

        Assert.Equal(0, Cli.Run("export", "--checkpoint", dir["run/checkpoints/last.ckpt"], "--out", dir["ft.pth"]).ExitCode);
        Assert.Equal("134", Python.Run("transfer_reference.py", "mlnet", dir["ft.pth"], "10").Trim());
    }
}
