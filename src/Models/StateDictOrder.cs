using static TorchSharp.torch;

namespace Trainer.Models;

/// <summary>
/// PyTorch's state_dict order: each module's own parameters, then its own buffers, then its
/// children in registration order, depth first. TorchSharp's <c>state_dict()</c> lists every
/// parameter before every buffer, so exports and order checks go through this.
/// </summary>
internal static class StateDictOrder
{
    public static IEnumerable<(string Name, Tensor Tensor)> Entries(nn.Module module, string prefix = "")
    {
        foreach (var (name, p) in module.named_parameters(recurse: false)) yield return (prefix + name, p);
        foreach (var (name, b) in module.named_buffers(recurse: false, include_nonpersistent: false)) yield return (prefix + name, b);
        foreach (var (name, child) in module.named_children())
            foreach (var entry in Entries(child, prefix + name + "."))
                yield return entry;
    }

    public static IEnumerable<string> Keys(nn.Module module) => Entries(module).Select(e => e.Name);
}
