namespace Trainer.Recipes.Weights.Onnx;

/// <summary>
/// Follows the data of an ONNX graph from its input through a torchvision-shaped ResNet of basic
/// blocks (stem conv-BN-ReLU-maxpool; blocks of conv-BN-ReLU-conv-BN plus a shortcut, added, then
/// ReLU; a final average pool) and names each weight it meets as torchvision's state_dict does. A
/// block with a 1x1 conv-BN on its shortcut or a stride-2 conv opens a new stage. Anything else
/// (another operator, a grouped or biased conv, an unusual epsilon or padding, nodes left over)
/// is reported through the index's failure.
/// </summary>
sealed class ResNetGraphWalk(OnnxGraphIndex graph)
{
    /// <summary>torchvision's BatchNorm2d epsilon; exporters write it as a float (9.9999997e-6).</summary>
    const double Epsilon = 1e-5;
    static readonly long[] Widths = [64, 128, 256, 512];

    /// <summary>torchvision key -> ONNX initializer, in torchvision's order.</summary>
    public List<KeyValuePair<string, string>> Sources { get; } = [];
    public long[] InputShape { get; private set; } = [];
    public long Features { get; private set; }

    /// <summary>The final feature map's height and width (null where the input's size is not declared); tracked to check padding and pooling.</summary>
    readonly record struct Size(long? H, long? W);

    /// <summary>Walks the graph; returns the blocks per stage.</summary>
    public int[] Run()
    {
        var inputs = graph.Graph.DataInputs.ToList();
        if (inputs.Count != 1) throw graph.Fail($"the graph has {inputs.Count} data inputs ({string.Join(", ", inputs.Select(i => i.Name))}), expected one image batch");
        var input = inputs[0];
        if (input.Shape.Length != 4 || input.Shape[1] is not (3 or -1))
            throw graph.Fail($"input {input.Name} has shape [{string.Join(", ", input.Shape)}], expected (N, 3, H, W)");
        InputShape = input.Shape;
        var size = new Size(Known(input.Shape[2]), Known(input.Shape[3]));

        var x = ConvBn(graph.Next(input.Name, "Conv"), "conv1", "bn1", kernel: 7, stride: 2, 3, 64, ref size);
        x = graph.Next(x, "Relu").Outputs[0];
        var maxPool = graph.Next(x, "MaxPool");
        CheckWindow(maxPool, "maxpool", 3, 2, ref size);
        if (maxPool.Int("ceil_mode", 0) != 0) throw graph.Fail($"maxpool: ceil_mode is set ({maxPool})");
        x = maxPool.Outputs[0];

        var stages = new List<int>();
        long channels = 64;
        while (true)
        {
            var readers = graph.Readers(x);
            if (readers is [{ OpType: "AveragePool" or "GlobalAveragePool" } pool])
            {
                Pool(pool, size);
                break;
            }
            var (main, shortcut) = BlockEntry(x, readers);
            long stride = main.Ints("strides", [1, 1])[0];
            if (stride is not (1 or 2)) throw graph.Fail($"{main} has stride {stride}; a basic block's first conv has stride 1 or 2");
            if (stages.Count == 0 || shortcut is not null || stride != 1) stages.Add(0);
            int stage = stages.Count - 1, index = stages[stage]++;
            if (stage >= Widths.Length) throw graph.Fail($"a fifth stage begins at {main}; a torchvision ResNet has four");
            bool opens = index == 0;
            if (opens && stage > 0 && (shortcut is null || stride != 2))
                throw graph.Fail($"layer{stage + 1} should open with a stride-2 block with a 1x1 conv-BN shortcut, found {main}");
            if (opens && stage == 0 && (shortcut is not null || stride != 1))
                throw graph.Fail($"layer1 should open with a stride-1 block with an identity shortcut, found {main}");
            x = Block(x, main, shortcut, $"layer{stage + 1}.{index}", stride, channels, Widths[stage], ref size);
            channels = Widths[stage];
        }
        if (stages.Count != Widths.Length) throw graph.Fail($"found {stages.Count} stages, a torchvision ResNet has four");
        Features = channels;
        var left = graph.Unvisited.FirstOrDefault();
        if (left is not null) throw graph.Fail($"{left} is not part of a basic-block ResNet up to its pooled features (a classifier is not read)");
        return [.. stages];
    }

    static long? Known(long d) => d > 0 ? d : null;

    /// <summary>The block's main-path conv and its shortcut conv (null for an identity shortcut), told apart by where their BN leads: a ReLU (main) or the Add (shortcut).</summary>
    (OnnxNode Main, OnnxNode? Shortcut) BlockEntry(string x, IReadOnlyList<OnnxNode> readers)
    {
        var convs = readers.Where(r => r.OpType == "Conv").ToList();
        bool FeedsAdd(OnnxNode conv) =>
            graph.Readers(conv.Outputs[0]) is [{ OpType: "BatchNormalization" } bn] && graph.Readers(bn.Outputs[0]) is [{ OpType: "Add" }];
        var expected = $"{x} should feed a conv and an Add (identity shortcut) or two convs (projection shortcut), but feeds {string.Join(", ", readers)}";
        if (readers.Count != 2) throw graph.Fail(expected);
        if (convs.Count == 1 && readers.Any(r => r.OpType == "Add")) return (convs[0], null);
        if (convs.Count == 2 && FeedsAdd(convs[0]) != FeedsAdd(convs[1]))
            return FeedsAdd(convs[0]) ? (convs[1], convs[0]) : (convs[0], convs[1]);
        throw graph.Fail(expected);
    }

    string Block(string x, OnnxNode main, OnnxNode? shortcut, string key, long stride, long inChannels, long width, ref Size size)
    {
        var entry = size;
        var y = ConvBn(graph.Visit(main, "Conv"), key + ".conv1", key + ".bn1", 3, stride, inChannels, width, ref size);
        y = graph.Next(y, "Relu").Outputs[0];
        y = ConvBn(graph.Next(y, "Conv"), key + ".conv2", key + ".bn2", 3, 1, width, width, ref size);
        string skip = x;
        if (shortcut is not null)
        {
            skip = ConvBn(graph.Visit(shortcut, "Conv"), key + ".downsample.0", key + ".downsample.1", 1, stride, inChannels, width, ref entry);
            if (entry != size) throw graph.Fail($"{key}: the shortcut's output ({entry.H}x{entry.W}) does not match the main path's ({size.H}x{size.W})");
        }
        var add = graph.Next(y, "Add");
        if (add.Inputs.Length != 2 || !add.Inputs.Contains(skip))
            throw graph.Fail($"{key}: {add} should add the block's input path {skip} to {y}");
        return graph.Next(add.Outputs[0], "Relu").Outputs[0];
    }

    /// <summary>A bias-free conv followed by a BatchNormalization: maps both, returns the BN's output.</summary>
    string ConvBn(OnnxNode conv, string convKey, string bnKey, long kernel, long stride, long inChannels, long outChannels, ref Size size)
    {
        if (conv.Inputs.Length != 2) throw graph.Fail($"{convKey}: {conv} has a bias; torchvision's ResNet convs have none");
        if (conv.Int("group", 1) != 1) throw graph.Fail($"{convKey}: {conv} is a grouped convolution (group {conv.Int("group", 1)})");
        if (conv.Ints("dilations", [1, 1]).Any(d => d != 1)) throw graph.Fail($"{convKey}: {conv} is dilated");
        var weight = graph.Weight(conv.Inputs[1], conv);
        long[] expected = [outChannels, inChannels, kernel, kernel];
        if (!weight.shape.SequenceEqual(expected))
            throw graph.Fail($"{convKey}: {conv} has weights [{string.Join(", ", weight.shape)}], expected [{string.Join(", ", expected)}]");
        CheckWindow(conv, convKey, kernel, stride, ref size);
        Sources.Add(new(convKey + ".weight", conv.Inputs[1]));

        var bn = graph.Next(conv.Outputs[0], "BatchNormalization");
        if (bn.Inputs.Length != 5) throw graph.Fail($"{bnKey}: {bn} should read scale, bias, mean and variance");
        double epsilon = bn.Float("epsilon", 1e-5f);
        if (Math.Abs(epsilon - Epsilon) > 1e-7) throw graph.Fail($"{bnKey}: {bn} has epsilon {epsilon:G3}; torchvision's BatchNorm2d uses 1e-5");
        if (bn.Int("spatial", 1) != 1) throw graph.Fail($"{bnKey}: {bn} normalises per element (spatial = 0), not per channel");
        string[] roles = ["weight", "bias", "running_mean", "running_var"];
        for (int i = 0; i < roles.Length; i++)
        {
            var t = graph.Weight(bn.Inputs[i + 1], bn);
            if (!t.shape.SequenceEqual([outChannels]))
                throw graph.Fail($"{bnKey}: {bn} input {bn.Inputs[i + 1]} has shape [{string.Join(", ", t.shape)}], expected [{outChannels}]");
            Sources.Add(new($"{bnKey}.{roles[i]}", bn.Inputs[i + 1]));
        }
        return bn.Outputs[0];
    }

    /// <summary>
    /// Kernel, stride and padding of a conv or max pool. torchvision pads k/2 on every side; CNTK
    /// pads stride-2 windows k/2 before and k/2 - 1 after. Both give the same windows whenever
    /// the output sizes agree (an even side); where the size is known that is checked here.
    /// </summary>
    void CheckWindow(OnnxNode node, string key, long kernel, long stride, ref Size size)
    {
        var autoPad = node.String("auto_pad");
        if (autoPad is not (null or "" or "NOTSET")) throw graph.Fail($"{key}: {node} uses auto_pad {autoPad}; explicit pads are expected");
        var kernelShape = node.Ints("kernel_shape", [kernel, kernel]);
        var strides = node.Ints("strides", [1, 1]);
        if (!kernelShape.SequenceEqual([kernel, kernel]) || !strides.SequenceEqual([stride, stride]))
            throw graph.Fail($"{key}: {node} is a {string.Join("x", kernelShape)} window with strides {string.Join("x", strides)}, expected {kernel}x{kernel} with stride {stride}");
        var pads = node.Ints("pads", [0, 0, 0, 0]);
        long p = kernel / 2, shortEnd = Math.Max(p - (stride - 1), 0);
        if (pads.Length != 4) throw graph.Fail($"{key}: {node} has pads [{string.Join(", ", pads)}], expected four");
        long? Side(long? side, long begin, long end)
        {
            if (begin != p || (end != p && end != shortEnd))
                throw graph.Fail($"{key}: {node} pads [{string.Join(", ", pads)}]; expected {p} on each side, or {p} before and {shortEnd} after");
            if (side is not { } s) return null;
            long ours = (s + begin + end - kernel) / stride + 1, torchvision = (s + 2 * p - kernel) / stride + 1;
            if (ours != torchvision)
                throw graph.Fail($"{key}: {node} pads {begin} before and {end} after a side of {s}, which gives {ours} outputs where torchvision's symmetric padding gives {torchvision}");
            return ours;
        }
        size = new Size(Side(size.H, pads[0], pads[2]), Side(size.W, pads[1], pads[3]));
    }

    /// <summary>The final pooling must average the whole map (torchvision's adaptive average pool to 1x1).</summary>
    void Pool(OnnxNode pool, Size size)
    {
        graph.Visit(pool, "AveragePool", "GlobalAveragePool");
        if (pool.OpType == "GlobalAveragePool") return;
        var kernel = pool.Ints("kernel_shape", []);
        var pads = pool.Ints("pads", [0, 0, 0, 0]);
        bool whole = kernel.Length == 2 && (size.H is null || kernel[0] == size.H) && (size.W is null || kernel[1] == size.W);
        if (!whole || pads.Any(v => v != 0) || pool.Int("ceil_mode", 0) != 0)
            throw graph.Fail($"{pool} should average the whole {size.H}x{size.W} map with no padding");
    }
}
