using Trainer.Data;

namespace Trainer.Cli;

/// <summary>
/// A verb's command line: positionals, --name VALUE options (repeatable) and --flag switches.
/// Anything the verb does not know is bad input, reported in one line.
/// </summary>
public sealed class Arguments
{
    readonly Dictionary<string, List<string>> _values = new();
    readonly HashSet<string> _flags = new();
    public List<string> Positionals { get; } = new();

    public static Arguments Parse(string verb, IEnumerable<string> args, string[] valueOptions, string[] flags)
    {
        var parsed = new Arguments();
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var arg = e.Current;
            if (!arg.StartsWith("--") || arg == "--")
            {
                parsed.Positionals.Add(arg);
                continue;
            }
            var name = arg[2..];
            string? inline = null;
            int eq = name.IndexOf('=');
            if (eq > 0 && valueOptions.Contains(name[..eq])) { inline = name[(eq + 1)..]; name = name[..eq]; }
            if (flags.Contains(name)) parsed._flags.Add(name);
            else if (valueOptions.Contains(name))
            {
                if (inline is null && !e.MoveNext()) throw new BadInputException($"'trainer {verb}': --{name} needs a value");
                var value = inline ?? e.Current;
                if (!parsed._values.TryGetValue(name, out var list)) parsed._values[name] = list = new();
                list.Add(value);
            }
            else throw new BadInputException($"'trainer {verb}': unknown option --{name} (see 'trainer {verb} --help')");
        }
        return parsed;
    }

    public string? Value(string name) => _values.TryGetValue(name, out var list) ? list[^1] : null;
    public IReadOnlyList<string> Values(string name) => _values.TryGetValue(name, out var list) ? list : [];
    public bool Has(string flag) => _flags.Contains(flag);

    public int IntValue(string verb, string name, int fallback)
    {
        var text = Value(name);
        if (text is null) return fallback;
        return int.TryParse(text, out var v) && v > 0 ? v : throw new BadInputException($"'trainer {verb}': --{name} expects a positive integer, got '{text}'");
    }
}
