using System.Globalization;
using System.Text;
using Trainer.Data;

namespace Trainer.Recipes.Runs;

/// <summary>
/// `trainer predict --out FILE.csv`: a header <c>file,top1,top1_prob,top5</c> (then, with logits,
/// <c>logit_0 ... logit_{N-1}</c> in the checkpoint's class order) and one row per image.
/// <c>file</c> is the path below the image folder with '/' separators. <c>top5</c> lists the five
/// most probable classes (all of them when there are fewer), most probable first, as
/// <c>name:probability</c> joined by ';'; the probability follows the last ':', and a ';' or '%'
/// inside a class name is written %3B or %25 there, so splitting on ';' is always exact. Numbers
/// are the shortest text that reads back as the same float32 (exponent notation for small values,
/// e.g. 3.5E-07). Fields holding a comma, a quote or a line break are quoted as RFC 4180 says.
/// The file is written under a temporary name beside the target and renamed when complete, so a
/// failure never leaves half a file or replaces an existing one.
/// </summary>
public static class PredictionCsv
{
    static IEnumerable<string> Lines(IReadOnlyList<string> classes, IEnumerable<ImagePrediction> images, bool logits)
    {
        var header = "file,top1,top1_prob,top5";
        if (logits) header += string.Concat(Enumerable.Range(0, classes.Count).Select(i => $",logit_{i}"));
        yield return header;
        foreach (var image in images)
        {
            var top = image.Top(Prediction.TopK);
            var fields = new List<string> { image.File, classes[top[0].Class], Number(top[0].Probability), Top5(top, classes) };
            if (logits) fields.AddRange(image.Logits.Select(Number));
            yield return string.Join(',', fields.Select(Field));
        }
    }

    /// <summary>The top5 column: "cat:0.91;dog:0.05;...".</summary>
    static string Top5(IEnumerable<(int Class, float Probability)> top, IReadOnlyList<string> classes) =>
        string.Join(';', top.Select(t => $"{classes[t.Class].Replace("%", "%25").Replace(";", "%3B")}:{Number(t.Probability)}"));

    static string Number(float value) => value.ToString("R", CultureInfo.InvariantCulture);

    static string Field(string text) =>
        text.IndexOfAny([',', '"', '\n', '\r']) < 0 ? text : $"\"{text.Replace("\"", "\"\"")}\"";

    /// <summary>Refuses a target that can never be written (a folder), before any work is done.</summary>
    public static void CheckTarget(string path)
    {
        if (Directory.Exists(path)) throw new BadInputException($"--out {path} is a folder; give a file name such as {Path.Combine(path, "predictions.csv")}");
    }

    /// <summary>Writes the rows as <paramref name="images"/> yields them; returns how many. Any failure, in writing or in predicting, leaves <paramref name="path"/> as it was.</summary>
    public static int Write(string path, IReadOnlyList<string> classes, IEnumerable<ImagePrediction> images, bool logits)
    {
        CheckTarget(path);
        var full = Path.GetFullPath(path);
        var temporary = $"{full}.{Environment.ProcessId}.tmp";
        int rows = -1;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            using (var writer = new StreamWriter(temporary, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
            {
                writer.NewLine = "\n";
                foreach (var line in Lines(classes, images, logits))
                {
                    writer.WriteLine(line);
                    rows++;
                }
            }
            File.Move(temporary, full, overwrite: true);
            return rows;
        }
        catch (Exception e)
        {
            try { File.Delete(temporary); } catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException) { }
            if (e is IOException or UnauthorizedAccessException) throw new BadInputException($"cannot write {path}: {e.Message}");
            throw;
        }
    }
}
