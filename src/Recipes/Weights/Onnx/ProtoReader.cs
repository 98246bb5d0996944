using System.Text;
using Google.Protobuf;

namespace Trainer.Recipes.Weights.Onnx;

/// <summary>
/// The fields of one protobuf message, read in order from a byte range of the whole file with
/// Google.Protobuf's CodedInputStream. Nested messages and byte fields stay ranges of the same
/// buffer (nothing is copied until a caller asks), and every declared length is checked against
/// what is left of the message before anything is allocated.
/// </summary>
sealed class ProtoReader(byte[] bytes, int start, int end)
{
    CodedInputStream _input = new(bytes, start, end - start);
    uint _tag;

    public byte[] Bytes => bytes;

    /// <summary>The field number of the next field, or false at the end of the message.</summary>
    public bool Next(out int field)
    {
        if (_input.IsAtEnd)
        {
            field = 0;
            return false;
        }
        _tag = _input.ReadTag();
        field = WireFormat.GetTagFieldNumber(_tag);
        if (field == 0) throw new InvalidDataException($"a field with number 0 at byte {_input.Position}");
        return true;
    }

    WireFormat.WireType Wire => WireFormat.GetTagWireType(_tag);

    /// <summary>Skips the field just announced by <see cref="Next"/> (unknown fields, fields not needed).</summary>
    public void Skip()
    {
        if (Wire == WireFormat.WireType.LengthDelimited) Range();
        else _input.SkipLastField();
    }

    public long Int64() => Expect(WireFormat.WireType.Varint, "an integer")._input.ReadInt64();

    public float Float() => Expect(WireFormat.WireType.Fixed32, "a float")._input.ReadFloat();

    public string String()
    {
        var (offset, length) = Range();
        return Encoding.UTF8.GetString(bytes, offset, length);
    }

    /// <summary>A nested message as a reader of its own.</summary>
    public ProtoReader Message()
    {
        var (offset, length) = Range();
        return new ProtoReader(bytes, offset, offset + length);
    }

    /// <summary>The payload of a length-delimited field: its offset in <see cref="Bytes"/> and its length.</summary>
    public (int Offset, int Length) Range()
    {
        Expect(WireFormat.WireType.LengthDelimited, "a length-delimited value");
        long at = _input.Position;
        int length = _input.ReadLength();
        int offset = (int)_input.Position;
        if (length < 0 || length > end - offset)
            throw new InvalidDataException($"a field at byte {at} declares {length:N0} bytes but only {end - offset:N0} remain (truncated?)");
        // CodedInputStream cannot skip without copying, so the reader restarts after the payload.
        _input = new CodedInputStream(bytes, offset + length, end - offset - length);
        return (offset, length);
    }

    /// <summary>A repeated int64 field, packed (one range) or not (one value per field).</summary>
    public void AddInt64s(List<long> values)
    {
        if (Wire != WireFormat.WireType.LengthDelimited)
        {
            values.Add(Int64());
            return;
        }
        var (offset, length) = Range();
        var packed = new ProtoReader(bytes, offset, offset + length);
        while (!packed._input.IsAtEnd) values.Add(packed._input.ReadInt64());
    }

    /// <summary>A repeated float field as little-endian bytes: a packed field's payload (in place), or one unpacked value.</summary>
    public Memory<byte> FloatBytes()
    {
        if (Wire != WireFormat.WireType.LengthDelimited) return BitConverter.GetBytes(Float());
        var (offset, length) = Range();
        if (length % 4 != 0) throw new InvalidDataException($"packed floats at byte {offset} span {length} bytes, not a multiple of 4");
        return bytes.AsMemory(offset, length);
    }

    ProtoReader Expect(WireFormat.WireType wire, string what)
    {
        if (Wire != wire)
            throw new InvalidDataException($"field {WireFormat.GetTagFieldNumber(_tag)} at byte {_input.Position} should be {what} but has wire type {(int)Wire}");
        return this;
    }
}
