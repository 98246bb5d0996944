using System.Diagnostics;
using TorchSharp.PyBridge;
using Trainer.Models;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>
/// torchvision (Debian's python3-torch and python3-torchvision under /usr/bin/python3; .ci/run
/// installs them) builds each model with random weights and randomised BatchNorm statistics, saves
/// its state_dict and logits for two fixed inputs; our model loads the state_dict with no renaming
/// and must reproduce both the logits and their difference between the inputs (so a wrong feature
/// path fails even where a random net's logits barely depend on the input).
/// </summary>
public sealed class TorchvisionReferenceFixture : IDisposable
{
    public const int Size = 64;
    public static readonly string[] Models = ["alexnet", "vgg11_bn", "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2", "densenet121", "googlenet", "mnasnet1_0", "efficientnet_b0", "shufflenet_v2_x0_5", "shufflenet_v2_x2_0", "inception_v3"];
    /// <summary>Models whose stride and pools need a larger input than <see cref="Size"/> (torchvision's Inception-v3: 75 at least).</summary>
    static readonly Dictionary<string, int> LargerInputs = new() { ["inception_v3"] = 80 };
    public static int SizeFor(string name) => LargerInputs.GetValueOrDefault(name, Size);
    readonly TempDir _dir = new();
    public string Folder => _dir.Path;
    public string Log { get; }
    public int ExitCode { get; }

    public TorchvisionReferenceFixture()
    {
        var script = Path.Combine(TestPaths.RepoRoot, "tests", "Trainer.Tests", "torchvision_reference.py");
        var psi = new ProcessStartInfo("/usr/bin/python3", [script, Folder, Size.ToString(), .. Models.Select(m => LargerInputs.ContainsKey(m) ? $"{m}:{SizeFor(m)}" : m)]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        Log = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Log += stderr.Result;
        ExitCode = process.ExitCode;
    }

    public void Dispose() => _dir.Dispose();
}

public class TorchvisionCompatibilityTests(TorchvisionReferenceFixture reference) : IClassFixture<TorchvisionReferenceFixture>
{
    public static IEnumerable<object[]> Names => TorchvisionReferenceFixture.Models.Select(m => new object[] { m });

    static float[] ReadFloats(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void A_torchvision_state_dict_loads_unchanged_and_reproduces_its_logits(string name)
    {
        Assert.True(reference.ExitCode == 0, $"torchvision reference failed (is python3-torchvision installed?): {reference.Log}");
        using var model = ModelRegistry.Create(name, new ModelOptions(NumClasses: 1000));
        // Names and order as torchvision's state_dict lists them; shapes are checked by the strict load.
        var torchvisionKeys = File.ReadAllLines(Path.Combine(reference.Folder, name + ".keys.txt")).Where(k => k.Length > 0).ToList();
        Assert.Equal(torchvisionKeys, StateDictOrder.Keys(model).ToList());
        model.load_py(Path.Combine(reference.Folder, name + ".pth"), strict: true);
        model.eval();

        int s = TorchvisionReferenceFixture.SizeFor(name);
        using var x = tensor(ReadFloats(Path.Combine(reference.Folder, name + ".input.bin")), [2, 3, s, s]);
        using var expected = tensor(ReadFloats(Path.Combine(reference.Folder, name + ".logits.bin")), [2, 1000]);
        using var _ = no_grad();
        using var actual = model.call(x);

        double scale = expected.abs().max().item<float>();
        double error = (actual - expected).abs().max().item<float>();
        Assert.True(error <= 1e-4 * scale, $"{name}: logits differ by {error:G3} at scale {scale:G3}");

        // The input-dependent part: how the two images' logits differ.
        using var expectedDelta = expected[0] - expected[1];
        using var actualDelta = actual[0] - actual[1];
        double deltaScale = expectedDelta.abs().max().item<float>();
        Assert.True(deltaScale > 1e-3 * scale, $"{name}: the reference logits hardly depend on the input ({deltaScale:G3} vs {scale:G3})");
        double deltaError = (actualDelta - expectedDelta).abs().max().item<float>();
        Assert.True(deltaError <= 1e-3 * deltaScale, $"{name}: the input-dependent part differs by {deltaError:G3} at scale {deltaScale:G3}");
    }
}
