using System.Globalization;
using System.Reflection;
using System.Text;
using Trainer.Data;

namespace Trainer.Recipes.Config;

/// <summary>
/// Binds a <see cref="ConfigTree"/> onto a config record: snake_case keys to PascalCase
/// properties, strict types, and a one-line error naming the key and the file for anything
/// unknown or mistyped.
/// </summary>
internal static class ConfigBinder
{
    /// <summary>Binds the tree; <paramref name="origin"/> (the file, with any --set) is named in errors.</summary>
    public static T Bind<T>(ConfigTree tree, string origin) where T : new() =>
        (T)BindObject(typeof(T), tree.Root, "", origin, new T());

    static object BindObject(Type type, Dictionary<string, object?> map, string prefix, string origin, object target)
    {
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite)
            .ToDictionary(p => SnakeCase(p.Name), p => p);
        foreach (var (key, value) in map)
        {
            var path = prefix + key;
            if (!properties.TryGetValue(key, out var property))
                throw new BadInputException($"{origin}: unknown key '{path}' (known here: {string.Join(", ", properties.Keys)})");
            property.SetValue(target, Convert(property.PropertyType, value, path, origin, property.GetValue(target)));
        }
        return target;
    }

    static object? Convert(Type type, object? value, string path, string origin, object? current)
    {
        // Optional values (double?): empty, null or ~ leave them unset.
        if (Nullable.GetUnderlyingType(type) is Type underlying)
            return value is null || value is string { Length: 0 } or "null" or "~" ? null : Convert(underlying, value, path, origin, null);
        if (type.IsClass && type != typeof(string) && !type.IsArray)
        {
            if (value is not Dictionary<string, object?> child)
                throw new BadInputException($"{origin}: key '{path}' must be a mapping of keys");
            // Records are immutable: bind onto a copy of the current (default) value.
            var copy = type.GetMethod("<Clone>$")!.Invoke(current, null)!;
            return BindObject(type, child, path + ".", origin, copy);
        }
        if (type.IsArray)
        {
            var element = type.GetElementType()!;
            var items = value switch
            {
                List<object?> list => list,
                null => [],
                _ => [value],
            };
            var array = Array.CreateInstance(element, items.Count);
            for (int i = 0; i < items.Count; i++) array.SetValue(Convert(element, items[i], $"{path}[{i}]", origin, null), i);
            return array;
        }
        if (value is not string text)
            throw new BadInputException($"{origin}: key '{path}' expects {Describe(type)}, got {(value is null ? "nothing" : "a list or mapping")}");
        object? result = null;
        bool ok = type switch
        {
            _ when type == typeof(string) => (result = text) is not null,
            _ when type == typeof(int) => TryParse<int>(text, out result),
            _ when type == typeof(long) => TryParse<long>(text, out result),
            _ when type == typeof(double) => TryParse<double>(text, out result),
            _ when type == typeof(bool) => TryBool(text, out result),
            _ when type.IsEnum => TryEnum(type, text, out result),
            _ => false,
        };
        if (!ok) throw new BadInputException($"{origin}: key '{path}' expects {Describe(type)}, got '{text}'");
        return result;
    }

    static bool TryParse<T>(string text, out object? result) where T : ISpanParsable<T>
    {
        bool ok = T.TryParse(text, CultureInfo.InvariantCulture, out var parsed);
        result = parsed;
        return ok;
    }

    static bool TryBool(string text, out object? result)
    {
        result = text.ToLowerInvariant() switch { "true" or "yes" or "on" => true, "false" or "no" or "off" => false, _ => null };
        return result is not null;
    }

    static bool TryEnum(Type type, string text, out object? result)
    {
        var name = Enum.GetNames(type).FirstOrDefault(n => string.Equals(SnakeCase(n), SnakeCase(text), StringComparison.OrdinalIgnoreCase));
        result = name is null ? null : Enum.Parse(type, name);
        return result is not null;
    }

    static string Describe(Type type) => type switch
    {
        _ when Nullable.GetUnderlyingType(type) is Type inner => Describe(inner) + " or null",
        _ when type == typeof(int) || type == typeof(long) => "an integer",
        _ when type == typeof(double) => "a number",
        _ when type == typeof(bool) => "true or false",
        _ when type.IsEnum => "one of " + string.Join(", ", Enum.GetNames(type).Select(SnakeCase)),
        _ => "a " + type.Name.ToLowerInvariant(),
    };

    /// <summary>PascalCase to snake_case: BatchSize -> batch_size, NoDecayBnBias -> no_decay_bn_bias.</summary>
    public static string SnakeCase(string name)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0 && name[i - 1] != '_' && !char.IsUpper(name[i - 1])) sb.Append('_');
            sb.Append(char.ToLowerInvariant(name[i]));
        }
        return sb.ToString();
    }
}
