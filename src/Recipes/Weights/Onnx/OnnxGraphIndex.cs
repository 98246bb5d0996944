using static TorchSharp.torch;

namespace Trainer.Recipes.Weights.Onnx;

/// <summary>
/// Who produces and who reads each tensor of a graph, so a reader can follow the data from the
/// input instead of trusting the order of nodes or the names of initializers. Problems are
/// reported through <paramref name="fail"/>, which builds the exception the caller throws.
/// </summary>
sealed class OnnxGraphIndex(OnnxGraph graph, Func<string, Exception> fail)
{
    readonly Dictionary<string, List<OnnxNode>> _readers = IndexReaders(graph);
    readonly HashSet<OnnxNode> _visited = [];

    public OnnxGraph Graph => graph;

    public Exception Fail(string problem) => fail(problem);

    /// <summary>The nodes that read <paramref name="tensor"/>.</summary>
    public IReadOnlyList<OnnxNode> Readers(string tensor) => _readers.TryGetValue(tensor, out var list) ? list : [];

    /// <summary>The one node that reads <paramref name="tensor"/>, which must be a <paramref name="opType"/>; marks it visited.</summary>
    public OnnxNode Next(string tensor, params string[] opType)
    {
        var readers = Readers(tensor);
        if (readers.Count != 1)
            throw fail($"{tensor} should feed one {string.Join(" or ", opType)} but feeds {(readers.Count == 0 ? "nothing" : string.Join(", ", readers))}");
        return Visit(readers[0], opType);
    }

    /// <summary>Checks <paramref name="node"/>'s type and marks it visited (each node may be visited once).</summary>
    public OnnxNode Visit(OnnxNode node, params string[] opType)
    {
        if (!opType.Contains(node.OpType)) throw fail($"expected {string.Join(" or ", opType)}, found {node}");
        if (!_visited.Add(node)) throw fail($"{node} is reached twice");
        return node;
    }

    /// <summary>The float initializer <paramref name="name"/> (a weight, not a computed tensor).</summary>
    public Tensor Weight(string name, OnnxNode node) =>
        graph.Initializers.TryGetValue(name, out var t) ? t
        : graph.OtherInitializers.TryGetValue(name, out int type) ? throw fail($"{node} reads '{name}' of ONNX data type {type}, not float")
        : throw fail($"{node} reads '{name}', which is computed, not a stored weight");

    /// <summary>The nodes no walk reached.</summary>
    public IEnumerable<OnnxNode> Unvisited => graph.Nodes.Where(n => !_visited.Contains(n));

    static Dictionary<string, List<OnnxNode>> IndexReaders(OnnxGraph graph)
    {
        var readers = new Dictionary<string, List<OnnxNode>>();
        foreach (var node in graph.Nodes)
            foreach (var input in node.Inputs.Where(i => i.Length > 0))
            {
                if (!readers.TryGetValue(input, out var list)) readers[input] = list = [];
                list.Add(node);
            }
        return readers;
    }
}
