using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Trainer.Recipes.Config;

/// <summary>Writes a config record back as YAML in the same snake_case spelling the binder reads.</summary>
internal static class ConfigWriter
{
    public static string ToYaml(object config)
    {
        var sb = new StringBuilder();
        Write(sb, config, 0);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, object obj, int indent)
    {
        foreach (var p in obj.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var value = p.GetValue(obj);
            sb.Append(' ', indent).Append(ConfigBinder.SnakeCase(p.Name)).Append(':');
            if (IsSection(p.PropertyType, value))
            {
                sb.AppendLine();
                Write(sb, value, indent + 2);
            }
            else
            {
                sb.Append(' ').AppendLine(Scalar(value));
            }
        }
    }

    /// <summary>The config as dotted keys (train.batch_size) and their values as the YAML writes them.</summary>
    public static Dictionary<string, string> Flatten(object config)
    {
        var result = new Dictionary<string, string>();
        void Walk(object obj, string prefix)
        {
            foreach (var p in obj.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
            {
                var key = prefix + ConfigBinder.SnakeCase(p.Name);
                var value = p.GetValue(obj);
                if (IsSection(p.PropertyType, value)) Walk(value, key + ".");
                else result[key] = Scalar(value);
            }
        }
        Walk(config, "");
        return result;
    }

    static bool IsSection(Type type, [NotNullWhen(true)] object? value) => value is not null && type.IsClass && type != typeof(string) && !type.IsArray;

    static string Scalar(object? value) => value switch
    {
        null => "null",
        string s => s.Length == 0 || s.IndexOfAny([':', '#', '[', ']', '{', '}', ',', '\'', '"']) >= 0 || s != s.Trim() ? $"'{s.Replace("'", "''")}'" : s,
        bool b => b ? "true" : "false",
        Enum e => ConfigBinder.SnakeCase(e.ToString()),
        IFormattable f when value is not Enum => f.ToString(null, CultureInfo.InvariantCulture),
        IEnumerable list => "[" + string.Join(", ", list.Cast<object?>().Select(Scalar)) + "]",
        _ => value.ToString() ?? "",
    };
}
