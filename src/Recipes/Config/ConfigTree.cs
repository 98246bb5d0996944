using YamlDotNet.RepresentationModel;
using Trainer.Data;

namespace Trainer.Recipes.Config;

/// <summary>
/// A parsed YAML document as plain nested maps, lists and scalar strings, so overrides can be
/// applied by dotted key before the tree is bound to <see cref="RunConfig"/>.
/// </summary>
public sealed class ConfigTree
{
    public Dictionary<string, object?> Root { get; }
    /// <summary>The file (or description) the tree came from, for error messages.</summary>
    public string Origin { get; }

    ConfigTree(Dictionary<string, object?> root, string origin) { Root = root; Origin = origin; }

    public static ConfigTree Parse(string yaml, string origin)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new BadInputException($"{origin}: not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {Inner(e).Message}");
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet reports some unterminated structures this way, without a position.
            throw new BadInputException($"{origin}: not valid YAML: {e.Message}");
        }
        if (stream.Documents.Count == 0) return new ConfigTree(new(), origin);
        return ToObject(stream.Documents[0].RootNode) switch
        {
            Dictionary<string, object?> map => new ConfigTree(map, origin),
            null => new ConfigTree(new(), origin),
            _ => throw new BadInputException($"{origin}: the top level must be a mapping of keys"),
        };
    }

    public static ConfigTree Load(string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"config file {path} does not exist");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Applies "dotted.key=value"; the value is read as YAML (so 0.1, true and [1, 2] work).</summary>
    public void Set(string assignment)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new BadInputException($"--set {assignment}: expected KEY=VALUE, for example train.epochs=10");
        var key = assignment[..eq].Trim();
        var valueText = assignment[(eq + 1)..];
        object? value;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(valueText));
            value = stream.Documents.Count == 0 ? null : ToObject(stream.Documents[0].RootNode);
        }
        catch (Exception e) when (e is YamlDotNet.Core.YamlException or InvalidOperationException)
        {
            value = valueText;
        }
        var parts = key.Split('.');
        var map = Root;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            if (!map.TryGetValue(parts[i], out var next) || next is not Dictionary<string, object?> child)
            {
                child = new Dictionary<string, object?>();
                map[parts[i]] = child;
            }
            map = child;
        }
        map[parts[^1]] = value;
    }

    static Exception Inner(Exception e) => e.InnerException is null ? e : Inner(e.InnerException);

    static object? ToObject(YamlNode node) => node switch
    {
        YamlMappingNode m => m.Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value ?? "", kv => ToObject(kv.Value)),
        YamlSequenceNode s => s.Children.Select(ToObject).ToList(),
        YamlScalarNode { Value: null or "" or "~" or "null", Style: YamlDotNet.Core.ScalarStyle.Plain } => null,
        YamlScalarNode sc => sc.Value,
        _ => null,
    };
}
