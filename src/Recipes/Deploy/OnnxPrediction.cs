using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Trainer.Data;
using Trainer.Data.ImageFolder;
using Trainer.Data.Loading;
using Trainer.Data.Transforms;
using Trainer.Recipes.Config;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Runs;
using Trainer.Recipes.Weights.Onnx;
using static TorchSharp.torch;

namespace Trainer.Recipes.Deploy;

/// <summary>
/// `trainer predict --model FILE.onnx`: an exported model run by ONNX Runtime (CPU) on every image
/// under a folder. The images go through the evaluation transform its metadata records (the run's
/// config: resize and centre crop, or CIFAR's 32x32), normalised unless the graph does it itself;
/// ten-crop runs average the logits of the crops as `trainer eval` does. Predictions stream batch
/// by batch, in the same form as a checkpoint's.
/// </summary>
public sealed class OnnxPrediction : IImagePredictor
{
    readonly InferenceSession _session;
    readonly BatchLoader _loader;
    readonly int _classes;

    OnnxPrediction(InferenceSession session, OnnxMetadata metadata, IReadOnlyList<ImageFile> files, BatchLoader loader, string transform)
    {
        _session = session; Metadata = metadata; Files = files; _loader = loader; Transform = transform;
        _classes = metadata.Classes.Length;
        Classes = metadata.ClassNames.Length == metadata.Classes.Length && metadata.ClassNames.Distinct().Count() == metadata.ClassNames.Length
            ? metadata.ClassNames : metadata.Classes;
    }

    public OnnxMetadata Metadata { get; }
    public IReadOnlyList<ImageFile> Files { get; }
    public string Model => Metadata.Model;
    public IReadOnlyList<string> Classes { get; }
    public string Transform { get; }

    public static OnnxPrediction Open(string modelPath, string imagesDir, int batchSize = 256)
    {
        var proto = OnnxModel.ReadProto(modelPath);
        var input = proto.Graph.Input.FirstOrDefault(i => !proto.Graph.Initializer.Any(t => t.Name == i.Name))
            ?? throw new BadInputException($"{modelPath} has no graph input");
        var dims = input.Type?.TensorType?.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue : -1).ToArray() ?? [];
        var metadata = OnnxMetadata.From(proto.MetadataProps.ToDictionary(p => p.Key, p => p.Value), modelPath, dims.Skip(1).ToArray())
            ?? throw new BadInputException($"{modelPath} has no trainer metadata (class names, input transform): predict runs ONNX models written by 'trainer export'");
        var config = ConfigLoader.FromYaml(metadata.ConfigYaml, $"{modelPath} (the config in its metadata)");
        var data = config.Data with { Cache = DecodeCache.None };
        int side = DataSources.EvalSide(data);
        if (dims.Length != 4 || dims[1] != 3 || (dims[2] > 0 && dims[2] != side) || (dims[3] > 0 && dims[3] != side))
            throw new BadInputException($"{modelPath} takes input {Shape(dims)} but its evaluation transform makes 3x{side}x{side} images");
        var files = ImageFiles.Find(imagesDir);
        var session = CreateSession(modelPath);
        try
        {
            var outputDims = session.OutputMetadata.Values.First().Dimensions;
            if (outputDims.Length != 2 || (outputDims[1] > 0 && outputDims[1] != metadata.Classes.Length))
                throw new BadInputException($"{modelPath} outputs {Shape(outputDims.Select(d => (long)d).ToArray())} but names {metadata.Classes.Length} classes");
            // The graph normalises itself (--preprocess): the loader hands it RGB in [0, 1].
            var normalization = metadata.Preprocessed ? Identity : metadata.Normalization;
            var images = DataSources.Unlabelled(data, files.Select(f => f.Path).ToList(), metadata.Classes, imagesDir);
            var loader = DataSources.EvalLoader(data, images, normalization, batchSize);
            return new OnnxPrediction(session, metadata, files, loader, Prediction.Describe(data, metadata.Normalization) + "; ONNX Runtime");
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    static readonly Normalization Identity = new(NormalizationMode.Channel, [0f, 0f, 0f], [1f, 1f, 1f]);

    /// <summary>ONNX Runtime's session; a model it refuses (a damaged graph, an unknown operator) is bad input in one line.</summary>
    static InferenceSession CreateSession(string path)
    {
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        try { return new InferenceSession(path, options); }
        catch (OnnxRuntimeException e)
        {
            throw new BadInputException(OnnxModel.OneLine($"ONNX Runtime cannot load {path}: {FirstLine(e.Message)}"));
        }
    }

    static string FirstLine(string message) => message.Split('\n')[0].Trim();

    static string Shape(long[] dims) => dims.Length == 0 ? "of unknown shape" : string.Join("x", dims.Select(d => d > 0 ? d.ToString() : "?"));

    public IEnumerable<ImagePrediction> Run()
    {
        int done = 0;
        var inputName = _session.InputMetadata.Keys.First();
        foreach (var batch in _loader.Epoch(0))
        {
            float[] pixels;
            long[] shape;
            using (batch)
            using (NewDisposeScope())
            {
                var (x, _) = Inputs.ToDevice(batch, CPU, channelsLast: false);
                var values = x.to(ScalarType.Float32).contiguous();
                pixels = values.data<float>().ToArray();
                shape = values.shape;
            }
            // (N, C, H, W), or (N, V, C, H, W) for ten crops: every view through the model, logits averaged.
            int n = (int)shape[0], views = shape.Length == 5 ? (int)shape[1] : 1;
            int[] dims = [n * views, .. shape[^3..].Select(d => (int)d)];
            var logits = Infer(inputName, pixels, dims);
            for (int i = 0; i < n; i++)
            {
                var row = new float[_classes];
                for (int v = 0; v < views; v++)
                    for (int c = 0; c < _classes; c++) row[c] += logits[((i * views) + v) * _classes + c] / views;
                yield return new ImagePrediction(Files[done++].Relative, row, Softmax(row));
            }
        }
    }

    float[] Infer(string inputName, float[] pixels, int[] dims)
    {
        var input = new DenseTensor<float>(pixels, dims);
        try
        {
            using var results = _session.Run([NamedOnnxValue.CreateFromTensor(inputName, input)]);
            return results.First().AsEnumerable<float>().ToArray();
        }
        catch (OnnxRuntimeException e)
        {
            throw new BadInputException(OnnxModel.OneLine($"ONNX Runtime failed on a batch of {string.Join("x", dims)}: {FirstLine(e.Message)}"));
        }
    }

    static float[] Softmax(float[] logits)
    {
        float max = logits.Max();
        var e = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => (float)(v / sum)).ToArray();
    }

    public void Dispose()
    {
        _session.Dispose();
    }
}
