using Trainer.Data.Cifar;
using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Optim;
using Trainer.Recipes.Runs;
using Trainer.Recipes.Schedules;
using Trainer.Recipes.Transfer;
using Xunit;

namespace Trainer.Tests;

/// <summary>
/// Every file in configs/ (recipes, the default, the transfer and degradation presets,
/// resnet18-imagenette) goes through what `trainer train --config` does before its first step:
/// parse, bind, validate, build the model(s) from the registry for the data set's classes, the
/// fine-tuning layer choice, the optimizer and the schedule. The folder is listed when the tests
/// are discovered, so a new config is covered without touching this file. Nothing trains here.
/// </summary>
public class ConfigFolderTests
{
    static string Folder => Path.Combine(TestPaths.RepoRoot, "configs");

    public static IEnumerable<object[]> Files =>
        Directory.GetFiles(Folder, "*.yaml").Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(f => new object[] { f! });

    [Fact]
    public void The_listing_finds_the_presets_and_recipes()
    {
        var files = Files.Select(f => (string)f[0]).ToList();
        // A listing that found nothing (a moved folder) would let every config rot unseen.
        Assert.Contains("default.yaml", files);
        Assert.Contains("resnet18-imagenette.yaml", files);
        Assert.Equal(4, files.Count(f => f.StartsWith("transfer-imagenette-")));
        Assert.Equal(3, files.Count(f => f.StartsWith("degradation-")));
        Assert.True(files.Count >= RecipeTests.Expected.Length + 9, string.Join(", ", files));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void A_config_loads_validates_and_builds_its_model_optimizer_and_schedule(string file)
    {
        var path = Path.Combine(Folder, file);
        var config = ConfigLoader.Load(path, []);
        // The copy built into trainer (the default, --recipe, the study's default) is this file.
        Assert.Equal(File.ReadAllText(path), ConfigLoader.EmbeddedYaml(file));

        int classes = Classes(config.Data);
        double lr = config.Optimizer.StartLr(config.Train.BatchSize);
        // A depth study trains plain and residual nets of each depth with this config.
        var models = file.StartsWith("degradation-")
            ? config.Study.Depths.SelectMany(d => new[] { $"plain{d}", $"resnet{d}" }).ToList()
            : [config.Model];
        foreach (var name in models)
        {
            using var model = RunModel.Create(config with { Model = name }, classes);
            Assert.True(ModelRegistry.CountParameters(model) > 0, name);
            var groups = config.Finetune.Active ? new FineTuning(model, config.Finetune).Groups(config.Optimizer) : ParameterGroup.Split(model, config.Optimizer.WeightDecay, config.Optimizer.NoDecayBnBias);
            Assert.NotEmpty(groups.SelectMany(g => g.Parameters));
            using var optimizer = OptimizerFactory.Create(config.Optimizer, groups, lr);
        }
        // The schedule over the run's length (one batch an epoch stands in for the data set's size).
        var schedule = ScheduleFactory.Create(config.Schedule, lr, RunLength.Of(config.Train, 1));
        Assert.InRange(schedule.LearningRate(0, 0), 0, lr);
    }

    /// <summary>
    /// The class count training would find: CIFAR's; an image folder's when it is there (the
    /// presets name ../shared/data/imagenette-160, from the checkout), otherwise the classes the
    /// config keeps (the ImageNet recipes name a user's copy: all 1000).
    /// </summary>
    static int Classes(DataConfig data)
    {
        if (data.Name == CifarSample.Name) return CifarFormat.Cifar10.NumClasses;
        if (data.Name != DataConfig.ImageFolder) return CifarFormat.ByName(data.Name).NumClasses;
        var root = Path.GetFullPath(data.Root, TestPaths.RepoRoot);
        if (Directory.Exists(root)) return DataSources.Load(data with { Root = root }, 0).Classes.Count;
        return data.NumClasses > 0 ? data.NumClasses : data.Classes.Length > 0 ? data.Classes.Length : 1000;
    }
}
