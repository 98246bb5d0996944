using ScottPlot;

namespace Trainer.Recipes.Studies;

/// <summary>
/// The study's figure, laid out like the ResNet paper's Figure 6: plain nets on the left, ResNets on
/// the right; training error dashed, test error solid; one colour per depth; error (%) against iterations.
/// </summary>
internal static class StudyFigure
{
    const int PanelWidth = 640, PanelHeight = 480;

    public static void Write(IReadOnlyList<StudyResult> results, string path)
    {
        var depths = results.Select(r => r.Run.Depth).Distinct().Order().ToList();
        double maxError = Math.Min(100, results.SelectMany(r => r.Train.Concat(r.Test)).Max(p => p.Error) + 5);
        var panels = DepthStudy.Kinds.Select(kind => Panel(results.Where(r => r.Run.Kind == kind).ToList(), kind, depths, maxError)).ToList();

        Figures.SideBySide.WritePng(panels, PanelWidth, PanelHeight, path);
    }

    static byte[] Panel(IReadOnlyList<StudyResult> results, string kind, List<int> depths, double maxError)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        foreach (var r in results.OrderBy(r => r.Run.Depth))
        {
            var color = palette.GetColor(depths.IndexOf(r.Run.Depth));
            var name = kind == "plain" ? $"plain-{r.Run.Depth}" : $"ResNet-{r.Run.Depth}";
            var train = plot.Add.Scatter(r.Train.Select(p => (double)p.Step).ToArray(), r.Train.Select(p => p.Error).ToArray());
            train.Color = color;
            train.LinePattern = LinePattern.Dashed;
            train.MarkerSize = 0;
            train.LegendText = name + " train";
            var test = plot.Add.Scatter(r.Test.Select(p => (double)p.Step).ToArray(), r.Test.Select(p => p.Error).ToArray());
            test.Color = color;
            test.LineWidth = 2;
            test.MarkerSize = 5;
            test.LegendText = name + " test";
        }
        plot.Title(kind == "plain" ? "plain networks" : "residual networks");
        plot.XLabel("iterations");
        plot.YLabel("error (%)");
        plot.Axes.SetLimitsY(0, maxError);
        plot.ShowLegend(Alignment.LowerLeft);
        return plot.GetImageBytes(PanelWidth, PanelHeight, ImageFormat.Png);
    }
}
