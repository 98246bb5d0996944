using System.Runtime.InteropServices;

namespace Trainer.Models.Native;

/// <summary>
/// libtorch's process-wide switches on its global context (at::globalContext()), which PyTorch
/// exposes as torch.backends.* and torch.use_deterministic_algorithms and TorchSharp 0.107 mostly
/// does not. They are exported C++ functions; on x86-64 the context object is the first argument.
/// </summary>
internal static class LibTorchContext
{
    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
    static extern nint Global();

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    static extern void SetUserEnabledMkldnn(nint context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    static extern bool UserEnabledMkldnn(nint context);

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    static extern void SetUserEnabledNnpack(nint context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledNNPACKEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    static extern bool UserEnabledNnpack(nint context);

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context26setDeterministicAlgorithmsEbb")]
    static extern void SetDeterministicAlgorithms(nint context, [MarshalAs(UnmanagedType.U1)] bool on, [MarshalAs(UnmanagedType.U1)] bool warnOnly);

    [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context23deterministicAlgorithmsEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    static extern bool DeterministicAlgorithms(nint context);

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context21setDeterministicCuDNNEb")]
    static extern void SetDeterministicCuDnn(nint context, [MarshalAs(UnmanagedType.U1)] bool on);

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context17setBenchmarkCuDNNEb")]
    static extern void SetBenchmarkCuDnn(nint context, [MarshalAs(UnmanagedType.U1)] bool on);

    /// <summary>Whether libtorch hands convolutions to oneDNN (torch.backends.mkldnn.enabled).</summary>
    public static bool MkldnnEnabled
    {
        get => UserEnabledMkldnn(Global());
        set => SetUserEnabledMkldnn(Global(), value);
    }

    /// <summary>Whether libtorch may try NNPACK for a convolution (torch.backends.nnpack.enabled).</summary>
    public static bool NnpackEnabled
    {
        get => UserEnabledNnpack(Global());
        set => SetUserEnabledNnpack(Global(), value);
    }

    /// <summary>torch.use_deterministic_algorithms (errors, not warnings, for operations without a deterministic kernel).</summary>
    public static bool DeterministicAlgorithmsEnabled
    {
        get => DeterministicAlgorithms(Global());
        set => SetDeterministicAlgorithms(Global(), value, false);
    }

    /// <summary>torch.backends.cudnn.deterministic.</summary>
    public static bool CuDnnDeterministic { set => SetDeterministicCuDnn(Global(), value); }

    /// <summary>torch.backends.cudnn.benchmark.</summary>
    public static bool CuDnnBenchmark { set => SetBenchmarkCuDnn(Global(), value); }
}

/// <summary>The C library's environment, which native code (libtorch, oneDNN, CUDA) reads: .NET's Environment.SetEnvironmentVariable does not reach it on Unix.</summary>
internal static class NativeEnvironment
{
    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    /// <summary>setenv(3): true on success (also when <paramref name="overwrite"/> is false and the variable was kept).</summary>
    public static bool Set(string name, string value, bool overwrite = true) => SetEnv(name, value, overwrite ? 1 : 0) == 0;
}
