using System.Collections;
using System.Collections.Specialized;
using TorchSharp.PyBridge;
using Trainer.Data;
using static TorchSharp.torch;

namespace Trainer.Recipes.Weights;

/// <summary>
/// PyTorch's zip-format state_dicts (what torch.save writes since 1.6) through TorchSharp.PyBridge,
/// whose unpickler builds only tensors and plain containers (unknown classes become inert
/// records; nothing in the file is executed), after <see cref="PickleStorageCheck"/> has checked the
/// sizes its pickle declares. A file holding a training checkpoint rather than a
/// bare state_dict is read through its "state_dict"/"model" entry; DataParallel's "module."
/// prefix is dropped, as users of PyTorch expect.
/// </summary>
internal static class PyTorchFormat
{
    static readonly string[] NestedKeys = ["state_dict", "model_state_dict", "model", "net"];

    public static Dictionary<string, Tensor> Read(string path)
    {
        Hashtable root;
        try
        {
            // What the archive and its pickle declare is checked before the unpickler allocates for it.
            using (var zip = Checkpoints.ZipLimits.OpenChecked(path)) PickleStorageCheck.Check(zip, path);
            using var stream = File.OpenRead(path);
            root = PyTorchUnpickler.UnpickleStateDict(stream);
        }
        catch (Exception e) when (e is not BadInputException)
        {
            // The unpickler turns any class it does not know into an inert record and then refuses to construct it.
            var foreign = System.Text.RegularExpressions.Regex.Match(e.Message, @"ClassDict \(for ([^)]+)\)");
            if (foreign.Success)
                throw new BadInputException($"{path} holds a Python object ({foreign.Groups[1].Value}), not only tensors and plain containers; refused, nothing in it was run");
            throw new BadInputException($"{path} is not a readable PyTorch state_dict: {FirstLine(e.Message)}");
        }
        var tensors = AsTensors(root) ?? NestedKeys.Select(k => root[k] as Hashtable).Where(h => h is not null).Select(AsTensors).FirstOrDefault(t => t is not null)
            ?? throw new BadInputException($"{path} holds no state_dict (a dictionary of tensors); in PyTorch save torch.save(model.state_dict(), \"FILE.pth\")");
        if (tensors.Count > 0 && tensors.Keys.All(k => k.StartsWith("module.", StringComparison.Ordinal)))
            tensors = tensors.ToDictionary(kv => kv.Key["module.".Length..], kv => kv.Value);
        return tensors;
    }

    static Dictionary<string, Tensor>? AsTensors(Hashtable? table)
    {
        if (table is null || table.Count == 0) return null;
        var result = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry entry in table)
        {
            if (entry.Key is not string key || entry.Value is not Tensor tensor) return null;
            result[key] = tensor;
        }
        return result;
    }

    /// <summary>Writes <paramref name="tensors"/> in this order as a state_dict torch.load reads (zip format), through a temporary file.</summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var ordered = new OrderedDictionary();
        var copies = new List<Tensor>();
        foreach (var (name, tensor) in tensors)
        {
            // The pickler writes a tensor's bytes with its strides: give it plain contiguous CPU tensors.
            var copy = tensor.detach().cpu().contiguous().clone();
            copies.Add(copy);
            ordered[name] = copy;
        }
        try
        {
            // The same durable write as checkpoints: temporary file, fsync, rename.
            Storage.DurableFile.Write(path, file => PyTorchPickler.PickleStateDict(file, ordered, leaveOpen: true));
        }
        finally
        {
            foreach (var c in copies) c.Dispose();
        }
    }

    static string FirstLine(string message) => message.Split('\n')[0].Trim();
}
