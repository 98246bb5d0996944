using System.Runtime.InteropServices;
using System.Globalization;
using System.Text.Json;
using Trainer.Data;
using Trainer.Models;
using Trainer.Models.Summary;

namespace Trainer.Cli.Verbs;

public static class SummaryVerb
{
    public const string Help = """
        trainer summary --model NAME [--input CxHxW] [--num-classes N] [--json]
          One row per layer: output shape, parameters, multiply-accumulates (MACs), output memory;
          then totals. --input defaults to the model's native size (3x32x32 CIFAR, 3x224x224 ImageNet).
          Conventions (docs/models.md): conv MACs = Cout x H' x W' x (Cin/groups) x K x K,
          linear = in x out, pooling = outputs x K x K; memory at 4 bytes a value.
        """;

    public static int Run(string[] args, TextWriter output)
    {
        var a = Arguments.Parse("summary", args, ["model", "input", "num-classes"], ["json"]);
        var name = a.Value("model") ?? throw new BadInputException("'trainer summary' needs --model NAME (see 'trainer models')");
        if (!ModelRegistry.Contains(name)) throw new BadInputException(ModelRegistry.UnknownMessage(name));
        var entry = ModelRegistry.Get(name);
        var input = a.Value("input") is { } text ? ParseInput(text) : entry.NativeInput;
        int? classes = a.Value("num-classes") is null ? null : a.IntValue("summary", "num-classes", 0);
        using var model = entry.Create(new ModelOptions(classes));
        ModelCost cost;
        try
        {
            cost = CostSummary.Measure(name, model, input);
        }
        catch (Exception e) when (e is ArgumentException or ExternalException)
        {
            throw new BadInputException($"{name} cannot take a {string.Join("x", input)} input: {e.Message.Split('\n')[0]}");
        }
        output.Write(a.Has("json") ? Json(cost) : Table(cost));
        return 0;
    }

    public static long[] ParseInput(string text)
    {
        var parts = text.Split('x', 'X');
        if (parts.Length != 3 || !parts.All(p => long.TryParse(p, out var v) && v > 0))
            throw new BadInputException($"--input expects CxHxW, for example 3x224x224, got '{text}'");
        return parts.Select(long.Parse).ToArray();
    }

    static string Json(ModelCost c) => JsonSerializer.Serialize(new
    {
        model = c.Model, input = c.Input, @params = c.Params, trainable_params = c.TrainableParams, macs = c.Macs, activation_bytes = c.ActivationBytes,
        layers = c.Layers.Select(l => new { name = l.Name, type = l.Type, output_shape = l.OutputShape, @params = l.Params, macs = l.Macs, output_bytes = l.OutputBytes }),
    }) + "\n";

    static string Table(ModelCost c)
    {
        var sb = new System.Text.StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        int nameWidth = Math.Max(5, c.Layers.Max(l => l.Name.Length));
        sb.AppendLine(string.Format(inv, "{0} on {1}", c.Model, string.Join("x", c.Input)));
        sb.AppendLine(string.Format(inv, "{0} {1,-18} {2,-16} {3,14} {4,16} {5,12}", "layer".PadRight(nameWidth), "type", "output", "params", "MACs", "memory KB"));
        foreach (var l in c.Layers)
            sb.AppendLine(string.Format(inv, "{0} {1,-18} {2,-16} {3,14:N0} {4,16:N0} {5,12:N2}", l.Name.PadRight(nameWidth), l.Type, string.Join("x", l.OutputShape), l.Params, l.Macs, l.OutputBytes / 1024.0));
        sb.AppendLine(string.Format(inv, "parameters {0:N0} ({1:N0} trainable); multiply-accumulates {2:N0} ({3:F3} G); activation memory {4:N1} KB",
            c.Params, c.TrainableParams, c.Macs, c.Macs / 1e9, c.ActivationBytes / 1024.0));
        return sb.ToString();
    }
}
