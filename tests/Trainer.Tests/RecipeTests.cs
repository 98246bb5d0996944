using System.Text.Json;
using Trainer.Models;
using Trainer.Recipes.Config;
using Trainer.Recipes.Reproduction;
using Xunit;

namespace Trainer.Tests;

/// <summary>The paper recipes in configs/: what they name, that each trains, and the reproduction report.</summary>
public class RecipeTests
{
    public static readonly string[] Expected =
    [
        "alexnet-imagenet", "vgg16-imagenet", "googlenet-imagenet", "resnet50-imagenet", "resnet20-cifar10", "resnet56-cifar10",
        "resnet110-cifar10", "preact-resnet164-cifar10", "resnext29-8x64d-cifar10", "se-resnet50-imagenet", "densenet-bc-100-12-cifar10",
        "mobilenet-v1-imagenet", "mobilenet-v2-imagenet", "efficientnet-b0-imagenet", "resnet50-goyal-imagenet", "inception-v3-imagenet",
        "inception-v4-imagenet", "inception-resnet-v2-imagenet", "shufflenet-v2-imagenet",
    ];

    public static IEnumerable<object[]> Names => Expected.Select(n => new object[] { n });

    [Fact]
    public void The_catalog_holds_every_papers_recipe()
    {
        Assert.Equal(Expected.OrderBy(n => n, StringComparer.Ordinal), RecipeCatalog.All.Select(r => r.Name));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void A_recipe_names_its_paper_an_existing_model_and_the_reported_figure(string name)
    {
        var recipe = RecipeCatalog.Get(name);
        var info = recipe.Info;
        Assert.Equal(name, info.Name);
        Assert.False(string.IsNullOrWhiteSpace(info.Paper));
        Assert.Matches(@"\(\d{4}\)", info.Paper);
        Assert.False(string.IsNullOrWhiteSpace(info.Section));
        Assert.False(string.IsNullOrWhiteSpace(info.Dataset));
        Assert.True(ModelRegistry.Contains(recipe.Config.Model));
        Assert.True(info.ReportedTop1Error is > 0 and < 1 || info.ReportedTop5Error is > 0 and < 1, "no reported figure");
        // Data paths are settings a user points at their copy, never this machine's shared folder.
        Assert.DoesNotContain("shared", recipe.Config.Data.Root);
        Assert.NotEqual("", recipe.Config.Data.Root);
        // The built-in copy is the file in configs/.
        var file = Path.Combine(TestPaths.RepoRoot, "configs", name + ".yaml");
        Assert.Equal(File.ReadAllText(file), ConfigLoader.EmbeddedYaml(name + ".yaml"));
    }

    [Fact]
    public void The_large_batch_recipe_starts_every_residual_block_as_the_identity_and_scales_the_rate()
    {
        var config = RecipeCatalog.Get("resnet50-goyal-imagenet").Config;
        Assert.Equal(3.2, config.Optimizer.StartLr(config.Train.BatchSize), 9);   // 0.1 x 8192 / 256
        using var model = Trainer.Recipes.Runs.RunModel.Create(config, 1000);
        var gammas = model.named_parameters().Where(p => p.name.EndsWith(".bn3.weight")).ToList();
        Assert.Equal(16, gammas.Count);   // ResNet-50: 3 + 4 + 6 + 3 bottleneck blocks
        Assert.All(gammas, g => Assert.Equal(0, g.parameter.abs().sum().item<float>()));
        // Everything else keeps its initialisation: the other BatchNorms scale by 1.
        Assert.All(model.named_parameters().Where(p => p.name.EndsWith(".bn2.weight")), g => Assert.Equal(1, g.parameter.min().item<float>()));
    }

    /// <summary>
    /// --set overrides that shrink a recipe to two steps on a few real images of ../shared/data;
    /// ImageNet recipes at 96x96 (VGG-16's two steps took 86 s at 224), except Inception-v3's: its
    /// auxiliary classifier needs the 17x17 grid of a 299x299 input.
    /// </summary>
    static string[] TwoStepOverrides(Recipe recipe) => recipe.Config.Data.Name == "imagefolder"
        ? [$"data.root={Path.Combine(TestPaths.SharedData, "imagenette-160")}", "data.num_classes=2", "data.per_class=4", "data.val_subset=4",
           .. recipe.Config.Model == "inception_v3" ? Array.Empty<string>() : ["data.image_size=96", "data.resize_size=110"],
           "data.workers=1", "train.batch_size=4", "train.iterations=2", "log.histograms=false", "log.image_grid=false", "log.progress=false"]
        : [$"data.root={TestPaths.SharedCifar10}", "data.subset=8", "data.val_subset=8", "train.batch_size=4", "train.iterations=2",
           "log.histograms=false", "log.image_grid=false", "log.progress=false"];

    [Theory]
    [MemberData(nameof(Names))]
    public void A_recipe_trains_two_steps_and_reports_against_the_paper(string name)
    {
        var recipe = RecipeCatalog.Get(name);
        using var dir = new TempDir();
        var args = new List<string> { "train", "--recipe", name, "--out", dir["run"] };
        foreach (var o in TwoStepOverrides(recipe)) args.AddRange(["--set", o]);
        var result = Cli.Run([.. args]);
        Assert.True(result.ExitCode == 0, result.Error + result.Output);
        Assert.Contains($"reproduction of {name}", result.Output);

        using var summary = JsonDocument.Parse(File.ReadAllText(dir["run/summary.json"]));
        var root = summary.RootElement;
        Assert.Equal(2, root.GetProperty("steps").GetInt64());
        Assert.Equal(8, root.GetProperty("images_seen").GetInt64());
        Assert.True(double.IsFinite(root.GetProperty("final").GetProperty("train_loss").GetDouble()), "the loss is not finite");
        var report = root.GetProperty("reproduction");
        Assert.Equal(name, report.GetProperty("recipe").GetString());
        var reported = report.GetProperty("reported");
        if (recipe.Info.ReportedTop1Error is double top1) Assert.Equal(top1, reported.GetProperty("top1_error").GetDouble());
        if (recipe.Info.ReportedTop5Error is double top5) Assert.Equal(top5, reported.GetProperty("top5_error").GetDouble());
        double error = report.GetProperty("run").GetProperty("final_top1_error").GetDouble();
        Assert.InRange(error, 0, 1);
        var changed = report.GetProperty("changed").EnumerateArray().ToDictionary(c => c.GetProperty("key").GetString()!, c => c.GetProperty("run").GetString()!);
        Assert.Equal("2", changed["train.iterations"]);
        Assert.Equal("4", changed["train.batch_size"]);
        Assert.False(changed.ContainsKey("data.root"), "where the data lives is not a change of recipe");
        Assert.Equal(8, report.GetProperty("compute").GetProperty("images_seen").GetInt64());
    }

    [Fact]
    public void The_report_lists_changed_settings_and_the_effective_learning_rate()
    {
        var paper = RecipeCatalog.Get("resnet56-cifar10").Config;
        var run = ConfigLoader.FromYaml(ConfigLoader.EmbeddedYaml("resnet56-cifar10.yaml"), "test",
            ["train.batch_size=64", "train.iterations=1000", "data.root=/elsewhere", "threads=1", "regularization.label_smoothing=0.1"]);
        var changes = ReproductionReport.Differences(paper, run).ToDictionary(c => c.Key);
        Assert.Equal(["train.batch_size", "train.iterations", "regularization.label_smoothing", "optimizer.lr (effective)"], changes.Keys.ToArray());
        Assert.Equal(("128", "64"), (changes["train.batch_size"].Paper, changes["train.batch_size"].Run));
        // Linear scaling from the paper's batch 128: 0.1 x 64/128.
        Assert.Equal(("0.1", "0.05"), (changes["optimizer.lr (effective)"].Paper, changes["optimizer.lr (effective)"].Run));
        Assert.Empty(ReproductionReport.Differences(paper, paper));
    }

    [Fact]
    public void Recipes_lists_each_recipe_as_json_and_as_a_table()
    {
        var json = Cli.Run("recipes", "--json");
        Assert.Equal(0, json.ExitCode);
        var rows = JsonDocument.Parse(json.Output).RootElement.EnumerateArray().ToList();
        Assert.Equal(Expected.Length, rows.Count);
        var resnet20 = rows.Single(r => r.GetProperty("name").GetString() == "resnet20-cifar10");
        Assert.Equal("resnet20", resnet20.GetProperty("model").GetString());
        Assert.Equal(0.0875, resnet20.GetProperty("reported_top1_error").GetDouble());
        Assert.Contains("Deep Residual Learning", resnet20.GetProperty("paper").GetString());
        Assert.Equal("CIFAR-10", resnet20.GetProperty("dataset").GetString());
        var table = Cli.Run("recipes");
        Assert.Contains("efficientnet-b0-imagenet", table.Output);
        Assert.Contains("22.90%", table.Output);
    }

    [Fact]
    public void An_unknown_recipe_or_a_recipe_with_a_config_is_bad_input()
    {
        var unknown = Cli.Run("train", "--recipe", "resnet21-cifar10");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("unknown recipe 'resnet21-cifar10'", Assert.Single(unknown.ErrorLines));
        var both = Cli.Run("train", "--recipe", "resnet20-cifar10", "--config", "configs/default.yaml");
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("either --recipe or --config", Assert.Single(both.ErrorLines));
    }
}
