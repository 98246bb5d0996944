using System.Runtime.InteropServices;
using Trainer.Models.Native;
using Xunit;
using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>
/// The CPU allocator that keeps large tensor blocks (TensorBlockCache). The tests run one at a
/// time (TestSupport), so no other test takes a freed block in between; the sizes are large and
/// left untouched (mapped memory costs nothing until written).
/// </summary>
public class TensorBlockCacheTests
{
    // The cache is process-wide: before each test, every tensor an earlier test left to its finalizer
    // is freed, so none returns a block to the cache while a test looks at it.
    public TensorBlockCacheTests() => Garbage.Settle();

    [DllImport("LibTorchSharp")]
    static extern nint THSTensor_data(nint handle);

    static nint Address(Tensor t) => THSTensor_data(t.Handle);

    const long Floats = 50L << 20;   // 200 MB

    [Fact]
    public void The_allocator_is_installed_on_linux()
    {
        Assert.Equal(OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64, TensorBlockCache.Installed);
    }

    [Fact]
    public void A_freed_large_block_serves_the_next_request_of_its_size_or_down_to_half_of_it()
    {
        if (!TensorBlockCache.Installed) return;
        nint first;
        using (var a = empty(Floats)) first = Address(a);
        long mapped = TensorBlockCache.MappedBytes;
        using (var b = empty(Floats)) Assert.Equal(first, Address(b));
        using (var c = empty(Floats * 6 / 10)) Assert.Equal(first, Address(c));   // 120 MB in the 200 MB block
        Assert.Equal(mapped, TensorBlockCache.MappedBytes);
        using var d = empty(Floats);
        using var e = empty(Floats);   // two at once: the second needs a new mapping
        Assert.NotEqual(Address(d), Address(e));
        Assert.True(TensorBlockCache.MappedBytes >= mapped + Floats * 4);
    }

    [Fact]
    public void A_request_under_half_a_cached_block_misses_and_gives_unused_blocks_back()
    {
        if (!TensorBlockCache.Installed) return;
        TensorBlockCache.Trim();
        using (empty(Floats)) { }
        long cached = TensorBlockCache.CachedBytes, inUse = TensorBlockCache.MappedBytes - cached;
        Assert.True(cached >= Floats * 4);
        using var quarter = empty(Floats / 4);   // 50 MB: too small for the 200 MB block
        // The cache held more than was in use, so the miss gave the 200 MB block back.
        if (inUse < cached) Assert.True(TensorBlockCache.CachedBytes < Floats * 4, $"{TensorBlockCache.CachedBytes} bytes still cached");
        quarter.fill_(1);
        Assert.Equal(Floats / 4, (long)quarter.sum().item<float>());
        using var small = arange(1000, dtype: ScalarType.Float32);
        Assert.Equal(499500.0, small.sum().item<float>(), 1);
    }

    [Fact]
    public void Values_written_to_cached_blocks_are_kept_and_clones_copy_them()
    {
        using var x = arange(Floats / 64, dtype: ScalarType.Float32).reshape(-1, 1024);   // 3.1 MB, cached
        using var y = x.clone();
        using var z = (y * 2).sum();
        Assert.True(x.eq(y).all().item<bool>());
        Assert.Equal((double)(Floats / 64) * (Floats / 64 - 1), z.item<float>(), 1e-3 * (Floats / 64) * (Floats / 64));
    }

    [Fact]
    public void Blocks_freed_on_other_threads_go_back_to_the_cache()
    {
        if (!TensorBlockCache.Installed) return;
        nint address = 0;
        var worker = new Thread(() => { using var t = empty(Floats); address = Address(t); });
        worker.Start();
        worker.Join();
        using var again = empty(Floats);
        Assert.Equal(address, Address(again));
    }

    [Fact]
    public void Trim_unmaps_the_cached_blocks_and_keeps_those_in_use()
    {
        if (!TensorBlockCache.Installed) return;
        using var kept = ones(Floats / 100);   // 2 MB in use
        using (empty(Floats)) { }
        Assert.True(TensorBlockCache.CachedBytes >= Floats * 4);
        TensorBlockCache.Trim();
        Assert.Equal(0, TensorBlockCache.CachedBytes);
        Assert.Equal((float)(Floats / 100), kept.sum().item<float>());
    }
}
