using System.Globalization;
using System.Text.Json;
using SkiaSharp;
using Trainer.Recipes.Reproduction;
using Xunit;

namespace Trainer.Tests;

/// <summary>`trainer models --chart/--csv`: the points are `summary`'s figures and the catalog's accuracies.</summary>
public class ModelChartTests
{
    [Fact]
    public void The_chart_and_csv_hold_summarys_costs_and_the_papers_accuracy_and_leave_off_a_model_without_one()
    {
        using var dir = new TempDir();
        var png = Path.Combine(dir.Path, "models.png");
        var csv = Path.Combine(dir.Path, "models.csv");
        // googlenet's paper reports only a top-5 error: in the CSV, off the chart.
        var result = Cli.Run("models", "--chart", png, "--csv", csv, "--models", "mobilenet_v2,efficientnet_b0,googlenet");
        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("chart: " + png + " (2 models)", result.Output);
        Assert.Contains("left off the chart, no recipe reports their ImageNet accuracy: googlenet", result.Output);

        var rows = File.ReadAllLines(csv).Skip(1).Select(l => l.Split(',')).ToDictionary(f => f[0]);
        Assert.Equal(["mobilenet_v2", "efficientnet_b0", "googlenet"], File.ReadAllLines(csv).Skip(1).Select(l => l.Split(',')[0]));
        foreach (var (name, fields) in rows)
        {
            var summary = Cli.Run("summary", "--model", name, "--json");
            Assert.Equal(0, summary.ExitCode);
            var costs = JsonDocument.Parse(summary.Output).RootElement;
            Assert.Equal(costs.GetProperty("params").GetInt64(), long.Parse(fields[3], CultureInfo.InvariantCulture));
            Assert.Equal(costs.GetProperty("macs").GetInt64(), long.Parse(fields[4], CultureInfo.InvariantCulture));
            Assert.Equal(costs.GetProperty("activation_bytes").GetInt64(), long.Parse(fields[5], CultureInfo.InvariantCulture));
        }
        // The accuracies are 1 - the top-1 error each model's own recipe reports.
        foreach (var (name, recipe) in new[] { ("mobilenet_v2", "mobilenet-v2-imagenet"), ("efficientnet_b0", "efficientnet-b0-imagenet") })
        {
            Assert.Equal(recipe, rows[name][7]);
            double reported = 1 - RecipeCatalog.Get(recipe).Info.ReportedTop1Error!.Value;
            Assert.Equal(reported, double.Parse(rows[name][6], CultureInfo.InvariantCulture), 4);
        }
        Assert.Equal("", rows["googlenet"][6]);

        using var image = SKBitmap.Decode(png);
        Assert.Equal((1440, 540), (image.Width, image.Height));
    }

    [Fact]
    public void The_default_set_is_every_model_whose_own_imagenet_recipe_reports_an_error()
    {
        Assert.Equal(["alexnet", "vgg16", "inception_v3", "inception_v4", "inception_resnet_v2", "resnet50", "mobilenet_v1", "mobilenet_v2", "se_resnet50", "shufflenet_v2_x1_0", "efficientnet_b0"], ModelComparison.DefaultModels());
        // resnet50 has two recipes; the ResNet paper's stands for it, not Goyal et al.'s large-batch one.
        Assert.Equal("resnet50-imagenet", ModelComparison.ReportingRecipe("resnet50")!.Name);
    }

    [Fact]
    public void An_unknown_model_a_missing_folder_or_a_chart_that_is_not_png_is_one_line_and_exit_2()
    {
        using var dir = new TempDir();
        var unknown = Cli.Run("models", "--chart", Path.Combine(dir.Path, "m.png"), "--models", "mobilenet_v2,resnet51");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("unknown model 'resnet51'", Assert.Single(unknown.ErrorLines));
        Assert.False(File.Exists(Path.Combine(dir.Path, "m.png")));

        var missing = Cli.Run("models", "--csv", "/nowhere/at/all/m.csv");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("/nowhere/at/all", Assert.Single(missing.ErrorLines));

        var notPng = Cli.Run("models", "--chart", Path.Combine(dir.Path, "m.jpg"));
        Assert.Equal(2, notPng.ExitCode);
        Assert.Contains("PNG", Assert.Single(notPng.ErrorLines));
    }
}
