// Fine-tunes a registry model's head on images listed in CSV files (path,label with a header
// line; labels are class indices): data from a source of your own, not an image folder.
// Usage: dotnet run -- TRAIN_CSV VAL_CSV CLASS_NAMES(comma-separated) [RUN_FOLDER] [key=value ...]
// Without init.weights the ResNet-18 starts from random weights (a smoke run); for real
// fine-tuning add init.weights=resnet18-imagenet.ckpt (`trainer import` makes one from the
// ImageNet ResNet-18 on NuGet; see docs/transfer-learning.md).
using Trainer.Data;
using Trainer.Recipes;
using Trainer.Recipes.Runs;

var classes = args[2].Split(',');
var data = new RunData(new CsvImages(args[0], classes), new CsvImages(args[1], classes), Test: null);
var config = Training.DefaultRecipe([
    "model=resnet18", "data.image_size=112", "data.resize_size=128", "train.batch_size=32", "train.epochs=5",
    "finetune.train=head", "optimizer.lr=0.01", .. args.Skip(4)]);
var run = new Training(config) { OutDir = args.Length > 3 ? args[3] : "runs/finetune-csv", Data = data };
var session = run.Run();
Console.WriteLine($"{session.TrainSamples} images, {session.TrainableParameters} of {session.Parameters} parameters trained, val top-1 {session.Metrics["val_top1"]:P2}");

/// <summary>Labelled images listed in a CSV file, read as encoded bytes (JPEG, PNG, ...).</summary>
sealed class CsvImages : IEncodedImages
{
    readonly List<(string Path, int Label)> rows;

    public CsvImages(string csv, IReadOnlyList<string> classes)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(csv))!;
        rows = File.ReadLines(csv).Skip(1).Where(line => line.Length > 0).Select(line => line.Split(','))
            .Select(f => (Path.Combine(folder, f[0]), int.Parse(f[1]))).ToList();
        Classes = classes;
        Source = csv;
    }

    public int Count => rows.Count;
    public int Label(int index) => rows[index].Label;
    public IReadOnlyList<string> Classes { get; }
    public string Source { get; }
    public byte[] Encoded(int index) => File.ReadAllBytes(rows[index].Path);
}
