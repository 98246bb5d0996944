using Trainer.Data;

namespace Trainer.Recipes.Weights.Onnx;

/// <summary>A file inside a NuGet package that the build restores into the NuGet cache (src/Cli/Trainer.Cli.csproj, PackageDownload).</summary>
internal sealed record PretrainedPackage(string Id, string Version, string RelativePath, string Model)
{
    /// <summary>Where the file is when the package is restored (it may not be).</summary>
    public string Path => System.IO.Path.Combine(PretrainedPackages.NuGetCache, Id.ToLowerInvariant(), Version, RelativePath);

    /// <summary>The file's path; bad input saying how to restore it when it is missing.</summary>
    public string Require() => File.Exists(Path) ? Path
        : throw new BadInputException($"the pretrained {Model} (NuGet package {Id} {Version}) is not at {Path}: run dotnet build, which restores it");
}

internal static class PretrainedPackages
{
    /// <summary>The NuGet package cache: NUGET_PACKAGES when set, else ~/.nuget/packages (NuGet's own rule).</summary>
    public static string NuGetCache => Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } cache
        ? cache
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>ML.NET's ImageNet ResNet-18 (CNTK 2.6 export, opset 8; stages 2-2-2-3, 512 features, no classifier); its preprocessing lies in ../ResNetPrepOnnx/.</summary>
    public static readonly PretrainedPackage MlNetResNet18 = new("Microsoft.ML.DnnImageFeaturizer.ResNet18", "0.23.1",
        "tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx", "ImageNet ResNet-18");
}
