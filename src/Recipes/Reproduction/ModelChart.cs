using ScottPlot;

namespace Trainer.Recipes.Reproduction;

/// <summary>
/// The course's model comparison as a picture (after Canziani et al. 2016): left, the accuracy each
/// paper reports against multiply-adds per image, each circle's area the model's parameters;
/// right, the same accuracy against activation memory per image (forward, as `summary` counts it).
/// Models without a reported accuracy are left off (the CSV keeps them).
/// </summary>
public static class ModelChart
{
    const int PanelWidth = 720, PanelHeight = 540;
    // The largest model's circle, in pixels across; areas scale with parameters.
    const double LargestDiameter = 60;

    public static void Write(IReadOnlyList<ComparedModel> rows, string path)
    {
        var charted = rows.Where(r => r.ReportedTop1Accuracy is not null).ToList();
        var panels = new[]
        {
            Panel(charted, r => r.Macs / 1e9, "multiply-adds per image (G)", "accuracy against operations (circle area: parameters)"),
            Panel(charted, r => r.ActivationBytes / 1048576.0, "activation memory per image, forward (MB)", "accuracy against memory (circle area: parameters)"),
        };
        Figures.SideBySide.WritePng(panels, PanelWidth, PanelHeight, path);
    }

    static byte[] Panel(IReadOnlyList<ComparedModel> rows, Func<ComparedModel, double> x, string xLabel, string title)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        double largest = rows.Count == 0 ? 1 : rows.Max(r => r.Params);
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            double accuracy = r.ReportedTop1Accuracy!.Value * 100;
            var dot = plot.Add.Marker(x(r), accuracy);
            dot.Size = (float)(LargestDiameter * Math.Sqrt(r.Params / largest));
            dot.Shape = MarkerShape.FilledCircle;
            dot.Color = palette.GetColor(i).WithAlpha(0.6);
            var label = plot.Add.Text($"{r.Name} ({r.Params / 1e6:0.#} M)", x(r), accuracy);
            label.LabelFontSize = 11;
            label.LabelAlignment = Alignment.LowerLeft;
        }
        if (rows.Count > 0)
        {
            // Room for the labels right of the largest model, and above and below the circles.
            double maxX = rows.Max(x), minY = rows.Min(r => r.ReportedTop1Accuracy!.Value * 100), maxY = rows.Max(r => r.ReportedTop1Accuracy!.Value * 100);
            plot.Axes.SetLimits(0, maxX * 1.3, minY - 3, maxY + 2);
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel("top-1 accuracy reported by the paper (%)");
        return plot.GetImageBytes(PanelWidth, PanelHeight, ImageFormat.Png);
    }
}
