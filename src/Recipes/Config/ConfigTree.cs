using YamlDotNet.RepresentationModel;
using Trainer.Data;

namespace Trainer.Recipes.Config;

/// <summary>
/// A parsed YAML document as plain nested maps, lists and scalar strings, so overrides can be
/// applied by dotted key before the tree is bound to <see cref="RunConfig"/>.
/// </summary>
internal sealed class ConfigTree
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
        return ToObject(stream.Documents[0].RootNode, origin) switch
        {
            Dictionary<string, object?> map => new ConfigTree(map, origin),
            null => new ConfigTree(new(), origin),
            _ => throw new BadInputException($"{origin}: the top level must be a mapping of keys"),
        };
    }

    public static ConfigTree Load(string path)
    {
        if (Directory.Exists(path)) throw new BadInputException($"config file {path} is a folder, not a file");
        if (!File.Exists(path)) throw new BadInputException($"config file {path} does not exist");
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new BadInputException($"config file {path} cannot be read: {e.Message}"); }
        return Parse(text, path);
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
            value = stream.Documents.Count == 0 ? null : ToObject(stream.Documents[0].RootNode, $"--set {assignment}");
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

    static object? ToObject(YamlNode node, string origin) => new Converter(origin).Convert(node);

    /// <summary>
    /// YAML nodes to maps, lists and strings. Keys must be plain names; and the values
    /// are counted, because aliases can make a few lines expand into billions of values.
    /// </summary>
    sealed class Converter(string origin)
    {
        const int MaxValues = 100_000;
        int _values;

        public object? Convert(YamlNode node)
        {
            if (++_values > MaxValues)
                throw new BadInputException($"{origin}: more than {MaxValues:N0} values once its aliases are expanded; a config is far smaller");
            return node switch
            {
                YamlMappingNode m => Map(m),
                YamlSequenceNode s => s.Children.Select(Convert).ToList(),
                YamlScalarNode { Value: null or "" or "~" or "null", Style: YamlDotNet.Core.ScalarStyle.Plain } => null,
                YamlScalarNode sc => sc.Value,
                _ => null,
            };
        }

        Dictionary<string, object?> Map(YamlMappingNode mapping)
        {
            var map = new Dictionary<string, object?>();
            foreach (var (keyNode, valueNode) in mapping.Children)
            {
                // YamlDotNet has already refused a key given twice.
                if (keyNode is not YamlScalarNode { Value: { } key })
                    throw new BadInputException($"{origin}: line {keyNode.Start.Line}, column {keyNode.Start.Column}: a key must be a plain name, not a list or mapping");
                map[key] = Convert(valueNode);
            }
            return map;
        }
    }
}
