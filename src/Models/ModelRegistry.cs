using Trainer.Models.Families;
using static TorchSharp.torch;

namespace Trainer.Models;

/// <summary>Options a config may pass to a model factory.</summary>
public sealed record ModelOptions(int NumClasses = 10, Shortcut Shortcut = Shortcut.A);

/// <summary>One registered architecture: its name, family, the data it was designed for, and how to build it.</summary>
public sealed record ModelEntry(string Name, string Family, string Dataset, Func<ModelOptions, nn.Module<Tensor, Tensor>> Create);

/// <summary>The single door to every model: look up by name, list, build.</summary>
public static class ModelRegistry
{
    static readonly Dictionary<string, ModelEntry> Entries = new(StringComparer.Ordinal);

    static ModelRegistry()
    {
        foreach (var depth in new[] { 20, 32, 44, 56, 110, 1202 })
        {
            int n = CifarResNet.BlocksForDepth(depth);
            Register(new ModelEntry($"resnet{depth}", "resnet-cifar", "cifar", o => new CifarResNet(n, o.NumClasses, o.Shortcut)));
        }
        foreach (var depth in new[] { 20, 32, 44, 56, 110 })
        {
            int n = CifarResNet.BlocksForDepth(depth);
            Register(new ModelEntry($"plain{depth}", "plain-cifar", "cifar", o => new CifarResNet(n, o.NumClasses, Shortcut.None)));
        }
    }

    static void Register(ModelEntry entry) => Entries.Add(entry.Name, entry);

    public static IReadOnlyCollection<ModelEntry> All => Entries.Values;

    public static bool Contains(string name) => Entries.ContainsKey(name);

    public static ModelEntry Get(string name) =>
        Entries.TryGetValue(name, out var entry)
            ? entry
            : throw new KeyNotFoundException($"unknown model '{name}' (known: {string.Join(", ", Entries.Keys)})");

    public static nn.Module<Tensor, Tensor> Create(string name, ModelOptions? options = null) =>
        Get(name).Create(options ?? new ModelOptions());

    public static long CountParameters(nn.Module module) => module.parameters().Sum(p => p.numel());
}
