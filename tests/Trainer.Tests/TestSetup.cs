using System.Runtime.CompilerServices;

namespace Trainer.Tests;

static class TestSetup
{
    /// <summary>Before any test touches a tensor: the native settings the trainer command applies (see NativeRuntime).</summary>
    [ModuleInitializer]
    internal static void Initialize()
    {
        Trainer.Models.Native.NativeRuntime.Configure();
    }
}
