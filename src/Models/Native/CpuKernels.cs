namespace Trainer.Models.Native;

/// <summary>
/// Guards against a oneDNN defect on virtual machines that hide the CPU's cache hierarchy
/// (CPUID's cache leaves zeroed; Linux then shows no /sys/devices/system/cpu/cpu0/cache). On an
/// AMD CPU, oneDNN 3.7 inside libtorch 2.10 then believes every cache holds one byte, and its
/// brgemm convolutions, blocked for that, die with SIGFPE (every 1x1 convolution) or compute wrong
/// values (GoogLeNet's logits off by 0.2 against PyTorch's). In order of preference:
///  1. AMD: give oneDNN the sizes the CPU still reports through its older leaves
///     (<see cref="OneDnnCacheRepair"/>): correct at full speed;
///  2. if that finds nothing to repair (another libtorch build): turn oneDNN off (libtorch's own
///     kernels: correct, about ten times slower), since oneDNN has read its settings by then;
///  3. other vendors (unverified; Xbyak reads their caches differently): cap oneDNN at AVX, which
///     has no brgemm kernels (correct, about half speed). A user's own ONEDNN_MAX_CPU_ISA is kept.
/// docs/performance.md has the measurements.
/// </summary>
internal static class CpuKernels
{
    const string IsaVariable = "ONEDNN_MAX_CPU_ISA";

    /// <summary>Whether libtorch hands convolutions to oneDNN (PyTorch's torch.backends.mkldnn.enabled); tests compare both.</summary>
    public static bool OneDnnEnabled
    {
        get => LibTorchContext.MkldnnEnabled;
        set => LibTorchContext.MkldnnEnabled = value;
    }

    /// <summary>Whether libtorch may try NNPACK for a convolution (PyTorch's torch.backends.nnpack.enabled).</summary>
    public static bool NnpackEnabled
    {
        get => LibTorchContext.NnpackEnabled;
        set => LibTorchContext.NnpackEnabled = value;
    }

    static readonly object Gate = new();
    static bool _configured;

    /// <summary>True when this machine's CPU reports no cache hierarchy (the condition oneDNN mishandles).</summary>
    public static bool CacheInfoHidden =>
        OperatingSystem.IsLinux() && Directory.Exists("/sys/devices/system/cpu/cpu0") && !Directory.Exists("/sys/devices/system/cpu/cpu0/cache");

    /// <summary>The cache sizes this process gave oneDNN (remedy 1), or null.</summary>
    public static string? RepairedCaches { get; private set; }

    /// <summary>The instruction-set cap this process put on oneDNN ("AVX", remedy 3), or null when it set none.</summary>
    public static string? IsaCap { get; private set; }

    /// <summary>Why this process turned oneDNN off (remedy 2), or null when it did not.</summary>
    public static string? OneDnnOffBecause { get; private set; }

    /// <summary>Applies the guard once per process; must run before the first convolution (oneDNN reads its settings once).</summary>
    public static void Configure()
    {
        lock (Gate)
        {
            if (_configured) return;
            _configured = true;
            if (!CacheInfoHidden) return;
            // NNPACK cannot initialise either ("Unsupported hardware"), and libtorch then logged a
            // warning for every convolution that could have used it (544 lines in 3 MobileNetV2 steps).
            NnpackEnabled = false;
            bool userIsa = Environment.GetEnvironmentVariable(IsaVariable) is not null;
            if (OneDnnCacheRepair.IsAmd())
            {
                RepairedCaches = OneDnnCacheRepair.TryApply(out var why);
                if (RepairedCaches is not null || userIsa) return;
                OneDnnEnabled = false;
                OneDnnOffBecause = why;
                return;
            }
            // .NET's Environment.SetEnvironmentVariable does not reach the native environment libtorch reads.
            if (!userIsa && NativeEnvironment.Set(IsaVariable, "AVX", overwrite: false)) IsaCap = "AVX";
        }
    }

    /// <summary>One line for a run's start when a slower remedy is in force, else null.</summary>
    public static string? Note =>
        OneDnnOffBecause is { } why ? $"note: this machine hides its CPU caches and oneDNN could not be told them ({why}), so oneDNN is off (correct, about ten times slower; see docs/performance.md)"
        : IsaCap is { } cap ? $"note: this machine hides its CPU caches, so oneDNN is capped at {cap} (correct, about half speed; see docs/performance.md)"
        : null;
}
