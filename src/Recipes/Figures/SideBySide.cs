using SkiaSharp;

namespace Trainer.Recipes.Figures;

/// <summary>One PNG from plot panels of equal size laid left to right (the study figure, the model comparison).</summary>
internal static class SideBySide
{
    public static void WritePng(IReadOnlyList<byte[]> panels, int panelWidth, int panelHeight, string path)
    {
        using var bitmap = new SKBitmap(panelWidth * panels.Count, panelHeight);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            for (int i = 0; i < panels.Count; i++)
            {
                using var panel = SKBitmap.Decode(panels[i]);
                canvas.DrawBitmap(panel, i * panelWidth, 0);
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        png.SaveTo(file);
    }
}
