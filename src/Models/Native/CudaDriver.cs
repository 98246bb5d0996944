using System.Runtime.InteropServices;

namespace Trainer.Models.Native;

/// <summary>
/// Why libtorch sees no GPU on a CUDA build, asked of the NVIDIA driver itself (libcuda.so.1, the
/// driver API, which every driver installs): no driver at all, a driver older than the CUDA the
/// build was made for, or a driver that finds no device.
/// </summary>
internal static class CudaDriver
{
    /// <summary>The CUDA version the CUDA build's libtorch (libtorch-cuda-12.8) was made for, as the driver API writes versions (1000 x major + 10 x minor).</summary>
    public const int BuiltFor = 12080;

    delegate int CuInit(uint flags);
    delegate int CuDriverGetVersion(out int version);
    delegate int CuDeviceGetCount(out int count);

    /// <summary>One line saying why no CUDA device is usable, or null when the driver sees at least one.</summary>
    public static string? WhyNoDevice()
    {
        if (!NativeLibrary.TryLoad("libcuda.so.1", out var driver))
            return "no NVIDIA driver is installed (libcuda.so.1 not found)";
        try
        {
            var version = Call<CuDriverGetVersion>(driver, "cuDriverGetVersion");
            if (version is null || version(out int supported) != 0) return "the NVIDIA driver does not report its CUDA version";
            if (supported < BuiltFor)
                return $"the NVIDIA driver supports CUDA {Version(supported)}, older than the CUDA {Version(BuiltFor)} this build's libtorch needs (update the driver)";
            int init = Call<CuInit>(driver, "cuInit")?.Invoke(0) ?? -1;
            if (init != 0) return $"the NVIDIA driver failed to start (cuInit error {init})";
            int count = 0;
            if (Call<CuDeviceGetCount>(driver, "cuDeviceGetCount")?.Invoke(out count) != 0 || count == 0)
                return "the NVIDIA driver finds no GPU";
            return null;
        }
        finally
        {
            NativeLibrary.Free(driver);
        }
    }

    /// <summary>A driver API version as major.minor: 12080 is "12.8".</summary>
    public static string Version(int driverApiVersion) => $"{driverApiVersion / 1000}.{driverApiVersion % 1000 / 10}";

    static T? Call<T>(nint library, string name) where T : Delegate =>
        NativeLibrary.TryGetExport(library, name, out var address) ? Marshal.GetDelegateForFunctionPointer<T>(address) : null;
}
