// A CNN of your own, trained on CIFAR-10 with the ResNet paper's recipe (SGD momentum 0.9,
// lr 0.1 divided by 10 on plateau, weight decay 1e-4, batch 256, pad-crop-flip augmentation).
// Usage: dotnet run -- CIFAR10_FOLDER [RUN_FOLDER] [key=value ...]   (e.g. train.epochs=30)
using Trainer.Recipes;
using TorchSharp;
using static TorchSharp.torch;

var (cifar, folder) = (args[0], args.Length > 1 ? args[1] : "runs/small-cnn");
var config = Training.DefaultRecipe(["data.name=cifar10", $"data.root={cifar}", .. args.Skip(2)]);
var run = new Training(config) { OutDir = folder, ModelName = "small_cnn", Model = classes => new SmallCnn(classes) };
var session = run.Run();
Console.WriteLine($"{session.Epoch} epochs, {session.Step} steps, best val top-1 {session.BestTop1:P2}: {folder}");

/// <summary>Three conv-BN-ReLU blocks, global average pooling, a linear classifier.</summary>
sealed class SmallCnn : nn.Module<Tensor, Tensor>
{
    readonly TorchSharp.Modules.Sequential layers;

    public SmallCnn(int classes) : base("small_cnn")
    {
        static (string, nn.Module<Tensor, Tensor>)[] Block(int i, long from, long to) =>
            [($"conv{i}", nn.Conv2d(from, to, 3, padding: 1, bias: false)), ($"bn{i}", nn.BatchNorm2d(to)), ($"relu{i}", nn.ReLU())];
        layers = nn.Sequential([.. Block(1, 3, 32), .. Block(2, 32, 64), ("pool2", nn.MaxPool2d(2)), .. Block(3, 64, 128),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(128, classes))]);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => layers.call(x);
}
