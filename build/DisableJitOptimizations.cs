// MSBuild inline task (compiled by RoslynCodeTaskFactory): see KeepTorchSharpArgumentsAlive.targets for why.
// Inline tasks compile against netstandard, without System.Reflection.Metadata, so the few
// metadata tables needed are walked here (ECMA-335 partition II, section 24).
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class DisableJitOptimizations : Task
{
    [Required] public ITaskItem[] Assemblies { get; set; } = Array.Empty<ITaskItem>();

    // System.Diagnostics.DebuggableAttribute.DebuggingModes
    const int Default = 0x1, DisableOptimizations = 0x100;

    public override bool Execute()
    {
        foreach (var item in Assemblies)
        {
            var path = item.ItemSpec;
            var bytes = File.ReadAllBytes(path);
            int blob, length;
            try
            {
                (blob, length) = DebuggableAttributeValue(bytes);
            }
            catch (Exception e) when (e is InvalidDataException or IndexOutOfRangeException or ArgumentException)
            {
                Log.LogError($"{path}: cannot read its metadata ({e.Message}); TorchSharp's code would run optimized (see build/KeepTorchSharpArgumentsAlive.targets)");
                continue;
            }
            bool changed;
            if (length == 8)
            {
                // DebuggableAttribute(DebuggingModes): prolog 01 00, int32 modes, no named arguments.
                int modes = BitConverter.ToInt32(bytes, blob + 2);
                int wanted = modes | Default | DisableOptimizations;
                changed = wanted != modes;
                BitConverter.GetBytes(wanted).CopyTo(bytes, blob + 2);
            }
            else if (length == 6)
            {
                // DebuggableAttribute(bool isJITTrackingEnabled, bool isJITOptimizerDisabled).
                changed = bytes[blob + 2] != 1 || bytes[blob + 3] != 1;
                bytes[blob + 2] = 1;
                bytes[blob + 3] = 1;
            }
            else
            {
                Log.LogError($"{path}: its DebuggableAttribute has an unknown form ({length} bytes); TorchSharp's code would run optimized (see build/KeepTorchSharpArgumentsAlive.targets)");
                continue;
            }
            if (!changed) continue;
            // A new file (never writing through a hard link into the package cache), with the
            // original's time stamp so that the next build's copy sees it as up to date.
            var stamp = File.GetLastWriteTimeUtc(path);
            var temporary = path + ".tmp";
            File.WriteAllBytes(temporary, bytes);
            File.SetLastWriteTimeUtc(temporary, stamp);
            File.Delete(path);
            File.Move(temporary, path);
            Log.LogMessage(MessageImportance.Normal, $"Disabled JIT optimizations in {path} (keeps native-call arguments alive).");
        }
        return !Log.HasLoggedErrors;
    }

    /// <summary>File offset and length of the value blob of the assembly's System.Diagnostics.DebuggableAttribute.</summary>
    static (int Offset, int Length) DebuggableAttributeValue(byte[] pe)
    {
        // PE headers: the CLI header is data directory 14; RVAs map to file offsets through the sections.
        int coff = BitConverter.ToInt32(pe, 0x3C) + 4;
        int sections = BitConverter.ToUInt16(pe, coff + 2), optionalSize = BitConverter.ToUInt16(pe, coff + 16);
        int optional = coff + 20;
        int directories = optional + (BitConverter.ToUInt16(pe, optional) == 0x20b ? 112 : 96);
        int sectionTable = optional + optionalSize;
        int FileOffset(int rva)
        {
            for (int s = 0; s < sections; s++)
            {
                int header = sectionTable + 40 * s;
                int address = BitConverter.ToInt32(pe, header + 12), size = BitConverter.ToInt32(pe, header + 16);
                if (rva >= address && rva < address + size) return rva - address + BitConverter.ToInt32(pe, header + 20);
            }
            throw new InvalidDataException($"RVA 0x{rva:x} lies in no section");
        }
        int cli = FileOffset(BitConverter.ToInt32(pe, directories + 14 * 8));
        int root = FileOffset(BitConverter.ToInt32(pe, cli + 8));
        if (BitConverter.ToUInt32(pe, root) != 0x424A5342) throw new InvalidDataException("no metadata signature");

        // Stream headers: offset, size, zero-terminated name padded to 4 bytes.
        int at = root + 16 + BitConverter.ToInt32(pe, root + 12) + 2;
        int streamCount = BitConverter.ToUInt16(pe, at);
        at += 2;
        int tables = -1, strings = -1, blobs = -1;
        for (int i = 0; i < streamCount; i++)
        {
            int offset = BitConverter.ToInt32(pe, at);
            int end = Array.IndexOf(pe, (byte)0, at + 8);
            string name = Encoding.ASCII.GetString(pe, at + 8, end - at - 8);
            if (name == "#~" || name == "#-") tables = root + offset;
            else if (name == "#Strings") strings = root + offset;
            else if (name == "#Blob") blobs = root + offset;
            at = (end + 4) & ~3;
        }
        if (tables < 0 || strings < 0 || blobs < 0) throw new InvalidDataException("missing metadata streams");

        int heapSizes = pe[tables + 6];
        long valid = BitConverter.ToInt64(pe, tables + 8);
        var rows = new int[64];
        at = tables + 24;
        for (int t = 0; t < 64; t++)
            if ((valid >> t & 1) != 0) { rows[t] = BitConverter.ToInt32(pe, at); at += 4; }
        int rowsStart = at;

        int stringIndex = (heapSizes & 1) != 0 ? 4 : 2, guidIndex = (heapSizes & 2) != 0 ? 4 : 2, blobIndex = (heapSizes & 4) != 0 ? 4 : 2;
        int Simple(int table) => rows[table] < 1 << 16 ? 2 : 4;
        int Coded(int tagBits, params int[] of)
        {
            int most = 0;
            foreach (int t in of) most = Math.Max(most, rows[t]);
            return most < 1 << (16 - tagBits) ? 2 : 4;
        }
        const int Module = 0x00, TypeRef = 0x01, TypeDef = 0x02, Field = 0x04, MethodDef = 0x06, Param = 0x08,
            InterfaceImpl = 0x09, MemberRef = 0x0A, Constant = 0x0B, CustomAttribute = 0x0C, DeclSecurity = 0x0E,
            StandAloneSig = 0x11, Event = 0x14, Property = 0x17, ModuleRef = 0x1A, TypeSpec = 0x1B, Assembly = 0x20,
            AssemblyRef = 0x23, File = 0x26, ExportedType = 0x27, ManifestResource = 0x28, GenericParam = 0x2A,
            MethodSpec = 0x2B, GenericParamConstraint = 0x2C;
        int resolutionScope = Coded(2, Module, ModuleRef, AssemblyRef, TypeRef);
        int typeDefOrRef = Coded(2, TypeDef, TypeRef, TypeSpec);
        int memberRefParent = Coded(3, TypeDef, TypeRef, ModuleRef, MethodDef, TypeSpec);
        int hasConstant = Coded(2, Field, Param, Property);
        int hasCustomAttribute = Coded(5, MethodDef, Field, TypeRef, TypeDef, Param, InterfaceImpl, MemberRef, Module,
            DeclSecurity, Property, Event, StandAloneSig, ModuleRef, TypeSpec, Assembly, AssemblyRef, File, ExportedType,
            ManifestResource, GenericParam, GenericParamConstraint, MethodSpec);
        int customAttributeType = Coded(3, MethodDef, MemberRef);

        // Row sizes of the tables stored before CustomAttribute (tables 0x00-0x0B).
        var rowSize = new int[CustomAttribute];
        rowSize[Module] = 2 + stringIndex + 3 * guidIndex;
        rowSize[TypeRef] = resolutionScope + 2 * stringIndex;
        rowSize[TypeDef] = 4 + 2 * stringIndex + typeDefOrRef + Simple(Field) + Simple(MethodDef);
        rowSize[0x03] = Simple(Field);
        rowSize[Field] = 2 + stringIndex + blobIndex;
        rowSize[0x05] = Simple(MethodDef);
        rowSize[MethodDef] = 8 + stringIndex + blobIndex + Simple(Param);
        rowSize[0x07] = Simple(Param);
        rowSize[Param] = 4 + stringIndex;
        rowSize[InterfaceImpl] = Simple(TypeDef) + typeDefOrRef;
        rowSize[MemberRef] = memberRefParent + stringIndex + blobIndex;
        rowSize[Constant] = 2 + hasConstant + blobIndex;
        var tableStart = new int[CustomAttribute + 1];
        tableStart[0] = rowsStart;
        for (int t = 0; t < CustomAttribute; t++) tableStart[t + 1] = tableStart[t] + rows[t] * rowSize[t];

        int Read(int offset, int size) => size == 2 ? BitConverter.ToUInt16(pe, offset) : BitConverter.ToInt32(pe, offset);
        string String(int index)
        {
            int start = strings + index, end = Array.IndexOf(pe, (byte)0, start);
            return Encoding.UTF8.GetString(pe, start, end - start);
        }

        const int AssemblyTag = 14, MemberRefTag = 3, TypeRefTag = 1;
        int customAttributeRow = hasCustomAttribute + customAttributeType + blobIndex;
        for (int r = 0; r < rows[CustomAttribute]; r++)
        {
            int row = tableStart[CustomAttribute] + r * customAttributeRow;
            int parent = Read(row, hasCustomAttribute), type = Read(row + hasCustomAttribute, customAttributeType);
            if ((parent & 31) != AssemblyTag || (type & 7) != MemberRefTag) continue;
            int memberRef = tableStart[MemberRef] + ((type >> 3) - 1) * rowSize[MemberRef];
            int owner = Read(memberRef, memberRefParent);
            if ((owner & 7) != TypeRefTag) continue;
            int typeRef = tableStart[TypeRef] + ((owner >> 3) - 1) * rowSize[TypeRef];
            if (String(Read(typeRef + resolutionScope, stringIndex)) != "DebuggableAttribute"
                || String(Read(typeRef + resolutionScope + stringIndex, stringIndex)) != "System.Diagnostics") continue;

            // A blob: its compressed length (1, 2 or 4 bytes), then its bytes; a custom attribute's starts with the prolog 01 00.
            int value = blobs + Read(row + hasCustomAttribute + customAttributeType, blobIndex);
            int first = pe[value];
            var (length, prefix) = (first & 0x80) == 0 ? (first, 1)
                : (first & 0xC0) == 0x80 ? (((first & 0x3F) << 8) | pe[value + 1], 2)
                : (((first & 0x1F) << 24) | (pe[value + 1] << 16) | (pe[value + 2] << 8) | pe[value + 3], 4);
            if (pe[value + prefix] != 0x01 || pe[value + prefix + 1] != 0x00) throw new InvalidDataException("DebuggableAttribute's value has no prolog");
            return (value + prefix, length);
        }
        throw new InvalidDataException("no assembly-level DebuggableAttribute");
    }
}
