using System.Diagnostics;
using System.Reflection;
using TorchSharp;

namespace Trainer.Models.Native;

/// <summary>The native settings every process of this tool applies before its first tensor (the trainer command and the tests).</summary>
public static class NativeRuntime
{
    /// <summary>
    /// True when the loaded TorchSharp.dll runs with JIT optimizations off, so that no argument of
    /// a native call (a temporary scalar or tensor) can be finalized while libtorch reads it. The
    /// build arranges it (build/KeepTorchSharpArgumentsAlive.targets); a copy of TorchSharp.dll
    /// that did not pass through that build runs optimized, and a garbage collection started by
    /// another thread can then corrupt a result or crash the process.
    /// </summary>
    public static bool TorchSharpArgumentsKeptAlive { get; } =
        typeof(torch).Assembly.GetCustomAttribute<DebuggableAttribute>() is { IsJITOptimizerDisabled: true };

    /// <summary>
    /// The libtorch this program was built with, "cpu" or "cuda": the build writes it next to the
    /// program (torch-backend.txt, build/TorchNative.targets); "cpu" when the file is missing.
    /// </summary>
    public static string TorchBackend { get; } = ReadBackend();

    static readonly object Gate = new();
    static bool _configured;

    static string ReadBackend()
    {
        var file = Path.Combine(AppContext.BaseDirectory, "torch-backend.txt");
        return File.Exists(file) ? File.ReadAllText(file).Trim() : "cpu";
    }

    /// <summary>Applies them once per process (later calls do nothing); <c>Training.Run</c> calls it, and so does the CLI.</summary>
    public static void Configure()
    {
        lock (Gate)
        {
            if (_configured) return;
            _configured = true;
        }
        if (!TorchSharpArgumentsKeptAlive)
            Console.Error.WriteLine($"warning: {typeof(torch).Assembly.Location} runs with JIT optimizations on; build with this repository's build files (build/KeepTorchSharpArgumentsAlive.targets) or a collection may free a tensor libtorch is reading");
        NativeHeap.Configure();
        TensorBlockCache.Configure();
        CpuKernels.Configure();
    }
}
