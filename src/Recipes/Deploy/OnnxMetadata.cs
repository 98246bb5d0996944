using System.Text.Json;
using Trainer.Data;
using Trainer.Data.Transforms;

namespace Trainer.Recipes.Deploy;

/// <summary>
/// What `trainer export` records in an ONNX model's metadata_props, so the file alone is enough to
/// classify an image: the model, its class names, the input it takes (normalised, or RGB in [0, 1]
/// when the normalisation is part of the graph), and the run's config (the evaluation transform,
/// and what `trainer import` needs to rebuild the model). Plain strings and JSON, readable from
/// any ONNX Runtime binding (C#: session.ModelMetadata.CustomMetadataMap).
/// </summary>
/// <param name="Model">The registry model.</param>
/// <param name="Classes">Class ids in label order.</param>
/// <param name="ClassNames">Readable names of the classes.</param>
/// <param name="Normalization">How inputs were normalised in training.</param>
/// <param name="Preprocessed">True when the graph itself scales and normalises (it takes RGB in [0, 1]).</param>
/// <param name="FoldedBatchNorm">True when BatchNorm was folded into the convolutions (--fold-bn).</param>
/// <param name="ConfigYaml">The run's resolved config.</param>
/// <param name="Input">The input's shape, batch first.</param>
/// <param name="EvalResize">The evaluation transform: the shorter side is resized to this many pixels...</param>
/// <param name="EvalCrop">...then the central EvalCrop x EvalCrop square is the input (CIFAR runs: 32 and 32).</param>
public sealed record OnnxMetadata(string Model, string[] Classes, string[] ClassNames, Normalization Normalization, bool Preprocessed,
    bool FoldedBatchNorm, string ConfigYaml, long[] Input, int EvalResize, int EvalCrop)
{
    public const string ModelKey = "trainer.model";
    public const string ClassesKey = "trainer.classes";
    public const string ClassNamesKey = "trainer.class_names";
    public const string NormalizationKey = "trainer.normalization";
    public const string PreprocessedKey = "trainer.preprocessed";
    public const string BatchNormKey = "trainer.batchnorm";
    public const string InputKey = "trainer.input";
    public const string ConfigKey = "trainer.config";
    public const string EvalResizeKey = "trainer.eval_resize";
    public const string EvalCropKey = "trainer.eval_crop";

    /// <summary>"float32 (batch, 3, 224, 224), RGB in [0, 1]" or "... normalised: (RGB in [0, 1] - mean) / std, mean ..., std ...".</summary>
    public string DescribeInput() => $"float32 NCHW (batch, {string.Join(", ", Input)}), " +
        (Preprocessed ? "RGB in [0, 1] (normalised inside the graph)" : $"normalised as in training: {Normalization.Describe()}, then (x - mean) / std");

    public Dictionary<string, string> ToProperties() => new()
    {
        [ModelKey] = Model,
        [ClassesKey] = JsonSerializer.Serialize(Classes),
        [ClassNamesKey] = JsonSerializer.Serialize(ClassNames),
        [NormalizationKey] = JsonSerializer.Serialize(new NormalizationJson(Normalization.Mode == NormalizationMode.PixelMean ? "pixel_mean" : "channel",
            Normalization.Mean, Normalization.Std, Normalization.Bgr ? "BGR" : "RGB", Normalization.Scale)),
        [PreprocessedKey] = Preprocessed ? "true" : "false",
        [BatchNormKey] = FoldedBatchNorm ? "folded" : "batchnormalization",
        [InputKey] = DescribeInput(),
        [ConfigKey] = ConfigYaml,
        [EvalResizeKey] = EvalResize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [EvalCropKey] = EvalCrop.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Reads the properties back; null when the file was not written by `trainer export`; bad input when they are damaged.</summary>
    public static OnnxMetadata? From(IReadOnlyDictionary<string, string> properties, string path, long[] input)
    {
        if (!properties.TryGetValue(ModelKey, out var model)) return null;
        try
        {
            string Need(string key) => properties.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"no '{key}' entry");
            var n = JsonSerializer.Deserialize<NormalizationJson>(Need(NormalizationKey)) ?? throw new InvalidDataException($"an empty '{NormalizationKey}'");
            var normalization = new Normalization(n.mode == "pixel_mean" ? NormalizationMode.PixelMean : NormalizationMode.Channel, n.mean, n.std)
            {
                Bgr = n.channels == "BGR", Scale = n.scale,
            };
            var classes = JsonSerializer.Deserialize<string[]>(Need(ClassesKey)) ?? [];
            var names = JsonSerializer.Deserialize<string[]>(Need(ClassNamesKey)) ?? [];
            return new OnnxMetadata(model, classes, names, normalization, Need(PreprocessedKey) == "true", Need(BatchNormKey) == "folded", Need(ConfigKey), input,
                int.Parse(Need(EvalResizeKey), System.Globalization.CultureInfo.InvariantCulture), int.Parse(Need(EvalCropKey), System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or NotSupportedException or FormatException or OverflowException)
        {
            throw new BadInputException($"{path} has damaged trainer metadata: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    // Lower-case names: the JSON other languages read (docs/deploy.md).
    sealed record NormalizationJson(string mode, float[] mean, float[] std, string channels, float scale);
}
