using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace Trainer.Models.Native;

/// <summary>
/// Gives oneDNN the CPU cache sizes an AMD virtual machine hides from it.
///
/// oneDNN 3.7 (inside libtorch 2.10) asks CPUID leaf 0x8000001D for an AMD CPU's caches through
/// its bundled Xbyak, always assumes three levels, and computes each size as (ways+1) x
/// (partitions+1) x (line size+1) x (sets+1). A hypervisor that zeroes that leaf therefore gives
/// 1-byte L1, L2 and L3 caches, and the brgemm convolutions' blocking, sized from them, divides by
/// zero (SIGFPE in every 1x1 convolution) or computes wrong values. The same machines still report
/// the sizes through AMD's older leaves 0x80000005/0x80000006 (the ones Linux's lscpu uses).
///
/// The detected sizes live in one static Xbyak::util::Cpu object in libtorch_cpu.so's .bss. After
/// oneDNN has built it (a small convolution does that), this finds the object by its contents (the
/// three 1-byte caches, each shared by one core, exactly three levels, the AMD flag) and writes the
/// sizes from the older leaves, before any real convolution chooses its blocking. If the object
/// is not found exactly once (another libtorch build), nothing is written and the caller falls back.
/// </summary>
internal static class OneDnnCacheRepair
{
    // Xbyak::util::Cpu as bundled with oneDNN 3.7, in 32-bit words from the object's start:
    // Type type_ {uint64 L, H} (words 0-3); bool x2APIC_supported_ (word 4); uint32 numCores_[2]
    // (5-6); uint32 dataCacheSize_[10] (7-16); uint32 coresSharingDataCache_[10] (17-26);
    // uint32 dataCacheLevels_ (27).
    const int SizesWord = 7, SharingWord = 17, LevelsWord = 27, MaxLevels = 10;
    const int AmdTypeBit = 25, IntelTypeBit = 24;

    /// <summary>The L1 data, L2 and L3 sizes this machine reports through AMD's older CPUID leaves, in bytes; null when it reports none.</summary>
    public static (uint L1, uint L2, uint L3)? LegacyAmdCacheSizes()
    {
        if (!X86Base.IsSupported) return null;
        var (maxExtended, _, _, _) = X86Base.CpuId(unchecked((int)0x80000000), 0);
        if ((uint)maxExtended < 0x80000006) return null;
        var (_, _, l1Info, _) = X86Base.CpuId(unchecked((int)0x80000005), 0);
        var (_, _, l2Info, l3Info) = X86Base.CpuId(unchecked((int)0x80000006), 0);
        uint l1 = ((uint)l1Info >> 24) * 1024, l2 = ((uint)l2Info >> 16) * 1024, l3 = ((uint)l3Info >> 18) * 512 * 1024;
        return l1 == 0 || l2 == 0 ? null : (l1, l2, l3);
    }

    /// <summary>True when CPUID names the vendor AMD (the only vendor whose zeroed cache leaf oneDNN misreads).</summary>
    public static bool IsAmd()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        return ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163; // "AuthenticAMD"
    }

    /// <summary>
    /// Builds oneDNN's CPU description, finds it and writes the real cache sizes. Returns a short
    /// description of what it wrote, or null (with the reason) when it wrote nothing.
    /// </summary>
    public static string? TryApply(out string why)
    {
        why = "";
        if (LegacyAmdCacheSizes() is not { } sizes) { why = "the CPU reports no cache sizes at all"; return null; }
        BuildOneDnnCpuDescription(); // also loads libtorch
        var library = LoadedLibrary("libtorch_cpu.so");
        if (library is null) { why = "libtorch_cpu.so is not loaded"; return null; }
        var bss = ElfSection(library.Value.Path, ".bss");
        if (bss is null) { why = "libtorch_cpu.so has no .bss section"; return null; }

        var start = library.Value.Base + (nint)bss.Value.Address;
        var words = new int[bss.Value.Size / 4];
        Marshal.Copy(start, words, 0, words.Length);
        var found = new List<int>();
        for (int i = 0; i + LevelsWord < words.Length; i++)
            if (LooksLikeMisreadAmdCpu(words, i)) found.Add(i);
        if (found.Count != 1) { why = $"oneDNN's CPU description was found {found.Count} times in libtorch_cpu.so"; return null; }

        var cpu = start + found[0] * 4;
        int l3Sharing = Math.Max(1, Environment.ProcessorCount);
        Marshal.WriteInt32(cpu, SizesWord * 4, (int)sizes.L1);
        Marshal.WriteInt32(cpu, (SizesWord + 1) * 4, (int)sizes.L2);
        Marshal.WriteInt32(cpu, (SizesWord + 2) * 4, (int)Math.Max(sizes.L3, sizes.L2));
        Marshal.WriteInt32(cpu, (SharingWord + 2) * 4, sizes.L3 > sizes.L2 ? l3Sharing : 1);
        return $"L1d {sizes.L1 / 1024} KiB, L2 {sizes.L2 / 1024} KiB, L3 {sizes.L3 / 1024} KiB shared by {l3Sharing} cores";
    }

    /// <summary>The object as the zeroed leaf leaves it: three levels of 1-byte caches, each for one core, and the AMD (not Intel) flag.</summary>
    static bool LooksLikeMisreadAmdCpu(int[] w, int i)
    {
        if (w[i + LevelsWord] != 3) return false;
        for (int level = 0; level < MaxLevels; level++)
        {
            int expected = level < 3 ? 1 : 0;
            if (w[i + SizesWord + level] != expected || w[i + SharingWord + level] != expected) return false;
        }
        long typeLow = (uint)w[i] | ((long)w[i + 1] << 32);
        return (typeLow >> AmdTypeBit & 1) == 1 && (typeLow >> IntelTypeBit & 1) == 0;
    }

    /// <summary>
    /// oneDNN describes the CPU on its first primitive. libtorch hands a float convolution to
    /// oneDNN when the batch has more than one image; a 3x3 one on a tiny input is safe with the
    /// misread caches (only the 1x1 kernels divide by the cache size) and its result is unused.
    /// </summary>
    static void BuildOneDnnCpuDescription()
    {
        using var noGrad = torch.no_grad();
        using var input = torch.ones(2, 1, 5, 5);
        using var weight = torch.ones(1, 1, 3, 3);
        using var output = torch.nn.functional.conv2d(input, weight);
    }

    static (string Path, nint Base)? LoadedLibrary(string fileName)
    {
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            // address perms offset dev inode path
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || !fields[5].EndsWith("/" + fileName, StringComparison.Ordinal) || fields[2] != "00000000") continue;
            return (fields[5].Trim(), (nint)Convert.ToInt64(fields[0].Split('-')[0], 16));
        }
        return null;
    }

    /// <summary>A section's address (relative to the load base) and size, from a 64-bit little-endian ELF file's section headers.</summary>
    static (long Address, long Size)? ElfSection(string path, string name)
    {
        using var file = File.OpenRead(path);
        using var reader = new BinaryReader(file);
        if (reader.ReadUInt32() != 0x464C457F || reader.ReadByte() != 2) return null; // "\x7fELF", 64-bit
        file.Position = 0x28;
        long sectionTable = reader.ReadInt64();
        file.Position = 0x3A;
        int entrySize = reader.ReadUInt16(), count = reader.ReadUInt16(), namesIndex = reader.ReadUInt16();
        (uint Name, long Address, long Offset, long Size) Header(int index)
        {
            file.Position = sectionTable + (long)index * entrySize;
            uint nameOffset = reader.ReadUInt32();
            file.Position += 4 + 8; // type, flags
            long address = reader.ReadInt64(), offset = reader.ReadInt64(), size = reader.ReadInt64();
            return (nameOffset, address, offset, size);
        }
        var names = Header(namesIndex);
        for (int i = 0; i < count; i++)
        {
            var header = Header(i);
            file.Position = names.Offset + header.Name;
            var bytes = new List<byte>();
            for (int b = reader.ReadByte(); b != 0; b = reader.ReadByte()) bytes.Add((byte)b);
            if (System.Text.Encoding.ASCII.GetString(bytes.ToArray()) == name) return (header.Address, header.Size);
        }
        return null;
    }
}
