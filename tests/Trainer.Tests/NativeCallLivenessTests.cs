using System.Diagnostics;
using System.Reflection;
using Trainer.Models;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>
/// TorchSharp 0.107 hands libtorch raw handles without keeping their owners alive: a temporary
/// scalar (the alpha of <c>t.add_(other)</c>) or tensor (<c>(a - b).abs()</c>) can be finalized by a
/// collection that another thread starts while libtorch still reads it (the test host's crash of
/// 2026-12-07). The build turns off JIT optimizations in the output copy of TorchSharp.dll, which
/// keeps every argument alive to the end of its method (build/KeepTorchSharpArgumentsAlive.targets).
/// </summary>
public class NativeCallLivenessTests
{
    [Fact]
    public void The_loaded_TorchSharp_runs_with_JIT_optimizations_off()
    {
        var assembly = typeof(Tensor).Assembly;
        var debuggable = assembly.GetCustomAttribute<DebuggableAttribute>();
        Assert.True(debuggable is { IsJITOptimizerDisabled: true },
            $"{assembly.Location} runs optimized: the build step KeepTorchSharpArgumentsAlive did not patch it");
        Assert.True(Trainer.Models.Native.NativeRuntime.TorchSharpArgumentsKeptAlive);
    }

    [Fact]
    public void Forwards_stay_exact_while_another_thread_forces_collections()
    {
        // Without the build step this failed within about two seconds: a corrupted alpha in the
        // residual addition ("Expected false to be true ... toFloat"), a tensor read after it was
        // freed ("Could not run 'aten::abs.out' with arguments from the 'PrivateUse1' backend"), or a segfault.
        using var model = ModelRegistry.Create("resnet20", new ModelOptions(NumClasses: 10));
        model.eval();
        using var x = arange(2 * 3 * 32 * 32, dtype: ScalarType.Float32).reshape(2, 3, 32, 32).sin();
        using var _ = no_grad();
        using var reference = model.call(x);

        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        });
        collector.Start();
        var differences = new List<string>();
        try
        {
            for (int i = 0; i < 500; i++)
            {
                // Deliberately without a dispose scope: the intermediate tensors are the finalizer's to free.
                double error = (model.call(x) - reference).abs().max().item<float>();
                if (error != 0) differences.Add($"iteration {i}: {error:G3}");
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        Assert.Empty(differences);
    }
}
