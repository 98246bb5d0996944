using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Text;
using Trainer.Data;

namespace Trainer.Recipes.Weights;

/// <summary>
/// Walks the opcodes of a PyTorch zip file's data.pkl without building anything, to find every
/// tensor it declares (a storage: element type, element count, archive entry; a view: offset,
/// shape, stride) and refuse, before the unpickler allocates, a storage larger than its entry or a
/// view that reaches past its storage. torch.save writes pickle protocol 2; an opcode this walk
/// does not know ends it without a verdict (the unpickler then decides).
/// </summary>
internal static class PickleStorageCheck
{
    /// <summary>A state_dict's pickle is about a hundred bytes a tensor; this is far above any real one.</summary>
    const long MaxPickleBytes = 64L << 20;

    static readonly Dictionary<string, int> ElementBytes = new()
    {
        ["DoubleStorage"] = 8, ["FloatStorage"] = 4, ["HalfStorage"] = 2, ["BFloat16Storage"] = 2, ["LongStorage"] = 8, ["IntStorage"] = 4,
        ["ShortStorage"] = 2, ["CharStorage"] = 1, ["ByteStorage"] = 1, ["BoolStorage"] = 1, ["ComplexDoubleStorage"] = 16, ["ComplexFloatStorage"] = 8,
    };

    sealed record Mark;
    sealed record Global(string Module, string Name);
    sealed record Storage(string Type, string Key, BigInteger Elements);
    sealed record Opaque;
    static readonly Mark TheMark = new();
    static readonly Opaque Something = new();

    public static void Check(ZipArchive zip, string path)
    {
        var pickle = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal));
        if (pickle is null) return;
        if (pickle.Length > MaxPickleBytes)
            throw new BadInputException($"{path}: its data.pkl is {pickle.Length:N0} bytes, far more than a state_dict's; refused");
        var bytes = new byte[pickle.Length];
        using (var stream = pickle.Open()) stream.ReadExactly(bytes);
        var entries = zip.Entries.ToDictionary(e => e.FullName, e => e.Length);
        new Walk(bytes, path, key => entries.FirstOrDefault(kv => kv.Key.EndsWith("data/" + key, StringComparison.Ordinal)).Value).Run();
    }

    sealed class Walk(byte[] data, string path, Func<string, long> entryLength)
    {
        readonly List<object> _stack = new();
        readonly Dictionary<long, object> _memo = new();
        int _at;

        public void Run()
        {
            while (_at < data.Length)
            {
                byte op = data[_at++];
                switch (op)
                {
                    case 0x80: Take(1); break;                                      // PROTO
                    case 0x95: Take(8); break;                                      // FRAME
                    case (byte)'.': return;                                         // STOP
                    case (byte)'(': Push(TheMark); break;                           // MARK
                    case (byte)'c': Push(new Global(Line(), Line())); break;        // GLOBAL
                    case 0x93: { var name = Pop(); var module = Pop(); Push(module is string m && name is string n ? new Global(m, n) : Something); break; }
                    case (byte)'X': Push(Text(Length(4))); break;                   // BINUNICODE
                    case 0x8c: Push(Text(Length(1))); break;                        // SHORT_BINUNICODE
                    case 0x8d: Push(Text(Length(8))); break;                        // BINUNICODE8
                    case (byte)'B' or (byte)'T': Take(Length(4)); Push(Something); break;   // BINBYTES, BINSTRING
                    case (byte)'C' or (byte)'U': Take(Length(1)); Push(Something); break;   // SHORT_BINBYTES, SHORT_BINSTRING
                    case 0x8e or 0x96: Take(Length(8)); Push(Something); break;     // BINBYTES8, BYTEARRAY8
                    case (byte)'J': Push((BigInteger)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                    case (byte)'K': Push((BigInteger)Take(1)[0]); break;
                    case (byte)'M': Push((BigInteger)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                    case 0x8a: Push(new BigInteger(Take(Length(1)), isUnsigned: false)); break;   // LONG1
                    case 0x8b: Push(new BigInteger(Take(Length(4)), isUnsigned: false)); break;   // LONG4
                    case (byte)'G': Take(8); Push(Something); break;                // BINFLOAT
                    case (byte)'N' or 0x88 or 0x89 or (byte)')' or (byte)']' or (byte)'}' or 0x8f: Push(op == (byte)')' ? Array.Empty<object>() : Something); break;
                    case (byte)'t': Push(PopToMark().ToArray()); break;             // TUPLE
                    case 0x85: Push(new[] { Pop() }); break;                        // TUPLE1
                    case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                    case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                    case (byte)'l' or (byte)'d' or 0x91: PopToMark(); Push(Something); break;      // LIST, DICT, FROZENSET
                    case (byte)'e' or (byte)'u' or 0x90: PopToMark(); break;        // APPENDS, SETITEMS, ADDITEMS
                    case (byte)'a': Pop(); break;                                   // APPEND
                    case (byte)'s': Pop(); Pop(); break;                            // SETITEM
                    case (byte)'0': Pop(); break;                                   // POP
                    case (byte)'1': PopToMark(); break;                             // POP_MARK
                    case (byte)'2': Push(Top()); break;                             // DUP
                    case (byte)'q': _memo[Take(1)[0]] = Top(); break;               // BINPUT
                    case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Top(); break;
                    case 0x94: _memo[_memo.Count] = Top(); break;                   // MEMOIZE
                    case (byte)'h': Push(Memo(Take(1)[0])); break;                  // BINGET
                    case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                    case (byte)'Q': Push(Persistent(Pop())); break;                 // BINPERSID
                    case (byte)'R': { var args = Pop(); var callable = Pop(); Rebuild(callable, args); Push(Something); break; }   // REDUCE
                    case (byte)'b': Pop(); break;                                   // BUILD
                    case 0x81: Pop(); Pop(); Push(Something); break;                // NEWOBJ
                    case 0x92: Pop(); Pop(); Pop(); Push(Something); break;         // NEWOBJ_EX
                    default: return;                                                // not torch.save's: no verdict
                }
            }
        }

        /// <summary>("storage", torch.XStorage, key, location, elements) as torch.save writes a storage.</summary>
        object Persistent(object pid)
        {
            if (pid is not object[] { Length: 5 } t || t[0] is not "storage" || t[1] is not Global { Module: "torch" } type || t[2] is not string key || t[4] is not BigInteger n)
                return Something;
            if (!ElementBytes.TryGetValue(type.Name, out int size)) return Something;
            long held = entryLength(key);
            if (n < 0 || n * size > held)
                throw new BadInputException($"{path}: storage 'data/{key}' declares {n:N0} elements of {type.Name} ({n * size:N0} bytes) but its entry holds {held:N0} bytes; refused before reading");
            return new Storage(type.Name, key, n);
        }

        /// <summary>torch._utils._rebuild_tensor_v2(storage, offset, shape, stride, ...): the view must lie inside the storage.</summary>
        void Rebuild(object callable, object args)
        {
            if (callable is not Global { Module: "torch._utils", Name: "_rebuild_tensor_v2" or "_rebuild_tensor" }) return;
            if (args is not object[] { Length: >= 4 } a || a[0] is not Storage storage || a[1] is not BigInteger offset
                || a[2] is not object[] shape || a[3] is not object[] stride || shape.Length != stride.Length
                || !shape.All(d => d is BigInteger) || !stride.All(s => s is BigInteger)) return;
            var dims = shape.Cast<BigInteger>().ToArray();
            var steps = stride.Cast<BigInteger>().ToArray();
            string Shape() => $"[{string.Join(", ", dims)}]";
            if (offset < 0 || dims.Any(d => d < 0) || steps.Any(s => s < 0))
                throw new BadInputException($"{path}: a tensor of shape {Shape()} has a negative size, stride or offset; refused");
            if (dims.Any(d => d == 0)) return;
            var last = offset + dims.Zip(steps, (d, s) => (d - 1) * s).Aggregate(BigInteger.Zero, (x, y) => x + y);
            if (last >= storage.Elements)
                throw new BadInputException($"{path}: a tensor of shape {Shape()} reaches element {last:N0} of storage 'data/{storage.Key}', which has {storage.Elements:N0}; refused before allocating");
        }

        void Push(object value) => _stack.Add(value);
        object Top() => _stack.Count > 0 ? _stack[^1] : throw Damaged("an empty stack");
        object Memo(long index) => _memo.TryGetValue(index, out var value) ? value : throw Damaged($"memo {index} read before it was written");

        object Pop()
        {
            var top = Top();
            _stack.RemoveAt(_stack.Count - 1);
            return top;
        }

        List<object> PopToMark()
        {
            int mark = _stack.LastIndexOf(TheMark);
            if (mark < 0) throw Damaged("no mark");
            var items = _stack.GetRange(mark + 1, _stack.Count - mark - 1);
            _stack.RemoveRange(mark, _stack.Count - mark);
            return items;
        }

        int Length(int bytes)
        {
            var raw = Take(bytes);
            ulong n = bytes switch { 1 => raw[0], 4 => BinaryPrimitives.ReadUInt32LittleEndian(raw), _ => BinaryPrimitives.ReadUInt64LittleEndian(raw) };
            return n <= (ulong)(data.Length - _at) ? (int)n : throw Damaged($"a value of {n:N0} bytes with {data.Length - _at:N0} left");
        }

        byte[] Take(int count)
        {
            if (count > data.Length - _at) throw Damaged("its end comes early");
            var taken = data.AsSpan(_at, count).ToArray();
            _at += count;
            return taken;
        }

        string Text(int length) => Encoding.UTF8.GetString(Take(length));

        string Line()
        {
            int end = Array.IndexOf(data, (byte)'\n', _at);
            if (end < 0) throw Damaged("a name without its end");
            var line = Encoding.UTF8.GetString(data, _at, end - _at);
            _at = end + 1;
            return line;
        }

        BadInputException Damaged(string what) => new($"{path} is not a readable PyTorch state_dict: its data.pkl is damaged ({what} at byte {_at})");
    }
}
