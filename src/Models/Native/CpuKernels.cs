using System.Runtime.InteropServices;

namespace Trainer.Models.Native;

/// <summary>
/// Guards against a oneDNN defect on virtual machines that hide the CPU's cache hierarchy
/// (CPUID reports no caches; Linux then shows no /sys/devices/system/cpu/cpu0/cache). oneDNN 3.7
/// inside libtorch 2.5 sizes its brgemm convolution blocks from that zero cache size: 1x1
/// convolutions die with SIGFPE (ResNet-50, ResNeXt, SE-ResNet-50, MobileNetV1) and others
/// compute wrong values (GoogLeNet's logits off by 0.2 against PyTorch). Capping oneDNN at AVX
/// (ONEDNN_MAX_CPU_ISA=AVX, which has no brgemm kernels) is correct on such machines, at about
/// half the speed; libtorch's non-oneDNN kernels are correct too but ten times slower. A user's
/// own ONEDNN_MAX_CPU_ISA is left alone. docs/performance.md has the measurements.
/// </summary>
public static class CpuKernels
{
    const string IsaVariable = "ONEDNN_MAX_CPU_ISA";

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetNativeEnvironment(string name, string value, int overwrite);

    static readonly object Gate = new();
    static bool _configured;

    /// <summary>True when this machine's CPU reports no cache hierarchy (the condition oneDNN mishandles).</summary>
    public static bool CacheInfoHidden =>
        OperatingSystem.IsLinux() && Directory.Exists("/sys/devices/system/cpu/cpu0") && !Directory.Exists("/sys/devices/system/cpu/cpu0/cache");

    /// <summary>The instruction-set cap this process put on oneDNN ("AVX"), or null when it set none.</summary>
    public static string? IsaCap { get; private set; }

    /// <summary>Applies the guard once per process; must run before the first convolution (oneDNN reads the cap once).</summary>
    public static void Configure()
    {
        lock (Gate)
        {
            if (_configured) return;
            _configured = true;
            if (!CacheInfoHidden || Environment.GetEnvironmentVariable(IsaVariable) is not null) return;
            // .NET's Environment.SetEnvironmentVariable does not reach the native environment libtorch reads.
            if (SetNativeEnvironment(IsaVariable, "AVX", 0) == 0) IsaCap = "AVX";
        }
    }
}
