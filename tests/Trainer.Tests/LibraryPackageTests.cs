using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace Trainer.Tests;

/// <summary>
/// The library packages as a user gets them: Trainer.Models, Trainer.Data and Trainer.Recipes are
/// packed from this suite's build under a version of their own (a restored version stays in
/// NuGet's cache forever), the two projects of examples/ are copied out of the repository and
/// built against that folder as their only package source (TorchSharp and libtorch come from the
/// machine's package cache as a read-only fallback folder: nothing is downloaded), then run:
/// the custom CNN on the shared CIFAR-10 with the ResNet recipe, and the fine-tuning of a
/// registry model on images listed in CSV files.
/// </summary>
public sealed class LibraryPackageTests(ITestOutputHelper output)
{
    [Fact]
    public void Examples_build_against_the_packed_libraries_and_train()
    {
        using var dir = new TempDir();
        var clock = Stopwatch.StartNew();
        var version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        foreach (var project in new[] { "Models", "Data", "Recipes" })
            Command.Run("dotnet", ["pack", Path.Combine(TestPaths.RepoRoot, "src", project), "-c", "Release", "--no-build", $"-p:Version={version}", "-o", dir["packages"]], TestPaths.RepoRoot);
        var packages = Directory.GetFiles(dir["packages"], "*.nupkg").Select(Path.GetFileName).Order().ToList();
        Assert.Equal([$"Trainer.Data.{version}.nupkg", $"Trainer.Models.{version}.nupkg", $"Trainer.Recipes.{version}.nupkg"], packages);
        // Each package: its assembly with XML documentation, the readme, the licence, a description; Models the native set-up for its users.
        foreach (var name in new[] { "Models", "Data", "Recipes" })
        {
            using var zip = System.IO.Compression.ZipFile.OpenRead(Path.Combine(dir["packages"], $"Trainer.{name}.{version}.nupkg"));
            var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains($"lib/net10.0/Trainer.{name}.dll", entries);
            Assert.Contains($"lib/net10.0/Trainer.{name}.xml", entries);
            Assert.Contains("PACKAGE-LIBRARY.md", entries);
            using var nuspec = new StreamReader(zip.GetEntry($"Trainer.{name}.nuspec")!.Open());
            var manifest = nuspec.ReadToEnd();
            Assert.Contains("<license type=\"expression\">MIT</license>", manifest);
            Assert.Contains("<readme>PACKAGE-LIBRARY.md</readme>", manifest);
            Assert.Matches("<description>[^<]{20,}</description>", manifest);
            if (name == "Models")
                foreach (var file in new[] { "Trainer.Models.targets", "TorchSharpOutput.targets", "PatchGlibcxx.targets", "KeepTorchSharpArgumentsAlive.targets", "WeakenGlibcxxRequirement.cs", "DisableJitOptimizations.cs" })
                    Assert.Contains($"buildTransitive/{file}", entries);
        }
        output.WriteLine($"packed in {clock.Elapsed.TotalSeconds:F0} s");

        // The examples outside the repository: none of its build files can help them.
        var examples = Path.Combine(TestPaths.RepoRoot, "examples");
        foreach (var file in Directory.GetFiles(examples, "*", SearchOption.AllDirectories)
                     .Where(f => !f.Contains("/bin/") && !f.Contains("/obj/") && Path.GetFileName(f) != "nuget.config"))
        {
            var target = Path.Combine(dir["examples"], Path.GetRelativePath(examples, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        var cache = Command.Run("dotnet", ["nuget", "locals", "global-packages", "--list"], dir.Path).Trim()["global-packages: ".Length..];
        string Build(string name)
        {
            var project = Path.Combine(dir["examples"], name);
            Command.Run("dotnet", ["restore", "--source", dir["packages"], $"-p:RestorePackagesPath={dir["restored"]}", $"-p:RestoreFallbackFolders={cache}",
                $"-p:TrainerVersion={version}"], project);
            Command.Run("dotnet", ["build", "-c", "Release", "--no-restore", $"-p:TrainerVersion={version}"], project);
            var bin = Path.Combine(project, "bin", "Release", "net10.0");
            Assert.Equal("cpu", File.ReadAllText(Path.Combine(bin, "torch-backend.txt")).Trim());   // the packages' build-transitive set-up ran
            return Path.Combine(bin, name + ".dll");
        }
        var customCnn = Build("CustomCnn");
        var fineTune = Build("FineTuneCsv");
        output.WriteLine($"both examples built in {clock.Elapsed.TotalSeconds:F0} s");

        // (1) A CNN of the example's own on CIFAR-10, two epochs of a few steps.
        var run = dir["cnn-run"];
        var text = Command.Run("dotnet", [customCnn, TestPaths.SharedCifar10, run, "data.subset=128", "data.val_subset=64", "train.batch_size=32", "train.epochs=2", "log.progress=false"], dir.Path);
        Assert.Contains("2 epochs, 8 steps", text);
        var metrics = File.ReadAllLines(Path.Combine(run, "metrics.csv"));
        Assert.StartsWith("epoch,step,lr,train_loss", metrics[0]);
        Assert.Equal(3, metrics.Length);
        Assert.StartsWith("2,8,", metrics[2]);
        Assert.Contains("model: small_cnn", File.ReadAllText(Path.Combine(run, "config.yaml")));
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "last.ckpt")));
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "best.ckpt")));
        var events = Directory.GetFiles(run, "events.out.tfevents.*").Single();
        var decoded = Python.Run(Path.Combine(TestPaths.SharedData, "..", "tools", "read_tfevents.py"), run);
        Assert.Contains("all CRCs OK", decoded);
        Assert.Contains("'tag': 'val/top1', 'simple_value'", decoded);
        output.WriteLine($"{Path.GetFileName(events)}; custom CNN ran, {clock.Elapsed.TotalSeconds:F0} s in all");

        // (2) A registry model's head fine-tuned on images listed in CSV files (paths relative to the CSV).
        var imagenette = Path.Combine(TestPaths.SharedData, "imagenette-160");
        string[] classes = ["n01440764", "n02102040"];
        foreach (var (split, perClass) in new[] { ("train", 8), ("val", 4) })
        {
            var lines = new List<string> { "path,label" };
            for (int label = 0; label < classes.Length; label++)
                lines.AddRange(Directory.GetFiles(Path.Combine(imagenette, split, classes[label])).Order(StringComparer.Ordinal).Take(perClass)
                    .Select(f => $"{Path.GetRelativePath(dir.Path, f)},{label}"));
            File.WriteAllLines(dir[$"{split}.csv"], lines);
        }
        text = Command.Run("dotnet", [fineTune, dir["train.csv"], dir["val.csv"], string.Join(",", classes), dir["tune-run"], "data.image_size=64", "data.resize_size=73",
            "train.batch_size=8", "train.epochs=1", "log.progress=false"], dir.Path);
        Assert.Contains("16 images, 1026 of 11177538 parameters trained", text);
        Assert.Single(File.ReadAllLines(Path.Combine(dir["tune-run"], "metrics.csv")).Skip(1));
        output.WriteLine($"fine-tuning example ran; {clock.Elapsed.TotalSeconds:F0} s in all");
    }
}
