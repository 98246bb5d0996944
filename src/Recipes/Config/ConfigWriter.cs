using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Trainer.Recipes.Config;

/// <summary>Writes a config record back as YAML in the same snake_case spelling the binder reads.</summary>
public static class ConfigWriter
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
            if (value is not null && p.PropertyType.IsClass && p.PropertyType != typeof(string) && !p.PropertyType.IsArray)
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
