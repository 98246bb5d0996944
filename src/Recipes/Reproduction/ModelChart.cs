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

    // The x axis runs this far past the largest value, so that its label fits.
    const double Headroom = 1.4;

    static byte[] Panel(IReadOnlyList<ComparedModel> rows, Func<ComparedModel, double> x, string xLabel, string title)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        double largest = rows.Count == 0 ? 1 : rows.Max(r => r.Params);
        double maxX = rows.Count == 0 ? 1 : rows.Max(x);
        double minY = rows.Count == 0 ? 0 : rows.Min(r => r.ReportedTop1Accuracy!.Value * 100) - 3;
        double maxY = rows.Count == 0 ? 1 : rows.Max(r => r.ReportedTop1Accuracy!.Value * 100) + 2;
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            var dot = plot.Add.Marker(x(r), r.ReportedTop1Accuracy!.Value * 100);
            dot.Size = (float)(LargestDiameter * Math.Sqrt(r.Params / largest));
            dot.Shape = MarkerShape.FilledCircle;
            dot.Color = palette.GetColor(i).WithAlpha(0.6);
        }
        // Labels from the right: the rightmost has the least room, so it chooses first.
        var placed = new List<(double Left, double Top, double Right, double Bottom)>();
        foreach (var r in rows.OrderByDescending(x))
        {
            double accuracy = r.ReportedTop1Accuracy!.Value * 100;
            string text = $"{r.Name} ({r.Params / 1e6:0.#} M)";
            var label = plot.Add.Text(text, x(r), accuracy);
            label.LabelFontSize = 11;
            label.LabelAlignment = FreeCorner(placed, text.Length, (x(r) / (maxX * Headroom), (accuracy - minY) / (maxY - minY)));
        }
        // Room for the labels right of the largest model, and above and below the circles.
        plot.Axes.SetLimits(0, maxX * Headroom, minY, maxY);
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel("top-1 accuracy reported by the paper (%)");
        return plot.GetImageBytes(PanelWidth, PanelHeight, ImageFormat.Png);
    }

    /// <summary>
    /// Where a point's label goes: above right, below right, above left or below left of the
    /// point, the first whose box (estimated in pixels from the point's place in the data area,
    /// given as fractions 0-1) stays in the area and overlaps no label placed before; else the
    /// one that overlaps them least.
    /// </summary>
    static Alignment FreeCorner(List<(double Left, double Top, double Right, double Bottom)> placed, int characters, (double X, double Y) at)
    {
        // The data area is about the panel less its axes and title; 11-point text is about 7 px a character, 15 px high.
        double areaWidth = PanelWidth - 90, areaHeight = PanelHeight - 100;
        double px = at.X * areaWidth, py = (1 - at.Y) * areaHeight, width = characters * 7.2, height = 15;
        var candidates = new (Alignment Alignment, double Left, double Top)[]
        {
            (Alignment.LowerLeft, px, py - height), (Alignment.UpperLeft, px, py),
            (Alignment.LowerRight, px - width, py - height), (Alignment.UpperRight, px - width, py),
        };
        static double Overlap((double Left, double Top, double Right, double Bottom) a, (double Left, double Top, double Right, double Bottom) b) =>
            Math.Max(0, Math.Min(a.Right, b.Right) - Math.Max(a.Left, b.Left)) * Math.Max(0, Math.Min(a.Bottom, b.Bottom) - Math.Max(a.Top, b.Top));
        var best = candidates
            .Select(c => (c.Alignment, Box: (Left: c.Left, Top: c.Top, Right: c.Left + width, Bottom: c.Top + height)))
            .Where(c => c.Box.Left >= 0 && c.Box.Top >= 0 && c.Box.Right <= areaWidth)
            .Select(c => (c.Alignment, c.Box, Covered: placed.Sum(p => Overlap(c.Box, p))))
            .OrderBy(c => c.Covered > 3 * height ? c.Covered : 0) // touching labels are still readable
            .FirstOrDefault();
        if (best == default) best = (Alignment.LowerLeft, (px, py - height, px + width, py), 0);
        placed.Add(best.Box);
        return best.Alignment;
    }
}
