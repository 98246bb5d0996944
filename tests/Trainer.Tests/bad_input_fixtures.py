#!/usr/bin/python3
"""Writes the bad files of BadInputTableTests (Debian's python3-torch and python3-pil) into OUT_DIR.

Usage: /usr/bin/python3 bad_input_fixtures.py OUT_DIR
good.jpg, good2.jpg   small real JPEGs (the good images beside a bad one)
truncated.jpg         the first half of a 128 x 128 JPEG of noise
notimage.jpg          text with a .jpg name
giant.png             a PNG whose header declares 100000 x 100000 pixels (valid CRC, no real pixel data)
giant.jpg             a JPEG whose frame header declares 65000 x 65000 pixels
legacy.pth            PyTorch's legacy (pre-1.6) serialization
evil.pth              a zip state_dict whose pickle calls os.system("touch OUT_DIR/pwned") when unpickled
other_arch.pth        the state_dict of a small Sequential net (another architecture)
small.pth, many.pth   honest state_dicts: {"w": [0, 1, 2, 3]}; 300 small tensors and one of 70000 elements
huge_claim.pth        a zip state_dict whose central directory says data/0 is 4,294,967,280 bytes (it is 16)
crafted_ok.pth        a zip state_dict written by the same crafting code, honest: a 2 x 2 tensor over 16 bytes
huge_shape.pth        ...whose pickle gives a 4-element (16-byte) storage the shape 100000 x 100000
huge_storage.pth      ...whose pickle says the storage of 16 bytes holds 1,000,000,000 floats
huge_claim.ckpt       a trainer checkpoint layout whose model.safetensors entry claims 4,294,967,280 bytes
huge_shape.safetensors  a safetensors header declaring a 100000 x 100000 x 100 float tensor over 16 bytes
"""
import collections
import io
import os
import pickle
import random
import struct
import sys
import zipfile
import zlib

import torch
from PIL import Image

out = sys.argv[1]


def path(name):
    return os.path.join(out, name)


def jpeg(size, colour):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


open(path("good.jpg"), "wb").write(jpeg((24, 20), (200, 40, 40)))
open(path("good2.jpg"), "wb").write(jpeg((20, 24), (40, 200, 40)))
data = jpeg((64, 64), (90, 60, 30))
# Noise, so that half of the file is well inside the compressed scan (its headers stay whole).
noise = io.BytesIO()
Image.frombytes("RGB", (128, 128), random.Random(0).randbytes(128 * 128 * 3)).save(noise, "JPEG", quality=90)
open(path("truncated.jpg"), "wb").write(noise.getvalue()[: len(noise.getvalue()) // 2])
open(path("notimage.jpg"), "w").write("this is not an image\n")

# A JPEG whose SOF0 frame header claims 65000 x 65000: height and width follow the marker,
# its length and the precision byte.
sof = data.index(b"\xff\xc0")
patched = bytearray(data)
patched[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
open(path("giant.jpg"), "wb").write(bytes(patched))


def chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
open(path("giant.png"), "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                                    + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))

small = {"w": torch.arange(4, dtype=torch.float32)}
torch.save(small, path("legacy.pth"), _use_new_zipfile_serialization=False)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + path("pwned"),))


torch.save({"conv1.weight": Evil()}, path("evil.pth"))
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 10))
torch.save(net.state_dict(), path("other_arch.pth"))


def claim_size(source, target, entry_suffix, claimed):
    """Copies a zip, changing the uncompressed size its central directory gives one entry."""
    raw = bytearray(open(source, "rb").read())
    at = raw.rfind(b"PK\x05\x06")
    count, _, start = struct.unpack("<HIL", raw[at + 10:at + 20])
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack("<HHH", raw[start + 28:start + 34])
        name = bytes(raw[start + 46:start + 46 + name_len]).decode()
        if name.endswith(entry_suffix):
            raw[start + 24:start + 28] = struct.pack("<I", claimed)
        start += 46 + name_len + extra_len + comment_len
    open(target, "wb").write(bytes(raw))


torch.save(small, path("small.pth"))
# Past 256 memo entries and 65535 elements: the long forms of the pickle's opcodes.
torch.save({**{f"t{i}": torch.full((i % 5 + 1,), float(i)) for i in range(300)}, "big": torch.ones(70000)}, path("many.pth"))
claim_size(path("small.pth"), path("huge_claim.pth"), "data/0", 0xFFFFFFF0)


class Storage:
    """Stands for a storage, written as torch.save writes one (a persistent id)."""

    def __init__(self, elements):
        self.elements = elements


class Tensor:
    def __init__(self, storage, shape, stride):
        self.args = (storage, 0, shape, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, "0", "cpu", obj.elements) if isinstance(obj, Storage) else None


def crafted_pth(name, elements, shape, stride):
    """A zip state_dict {"w": tensor} whose pickle declares what it is told over 16 bytes of data."""
    pkl = io.BytesIO()
    Pickler(pkl, protocol=2).dump(collections.OrderedDict(w=Tensor(Storage(elements), shape, stride)))
    with zipfile.ZipFile(path(name + ".pth"), "w", zipfile.ZIP_STORED) as z:
        z.writestr(name + "/data.pkl", pkl.getvalue())
        z.writestr(name + "/data/0", b"\x00" * 16)
        z.writestr(name + "/version", "3\n")


crafted_pth("crafted_ok", 4, (2, 2), (2, 1))
crafted_pth("huge_shape", 4, (100000, 100000), (100000, 1))
crafted_pth("huge_storage", 1000000000, (4,), (1,))


def safetensors(shape):
    header = ('{"w":{"dtype":"F32","shape":[%s],"data_offsets":[0,16]}}' % ",".join(map(str, shape))).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"\x00" * 16


open(path("huge_shape.safetensors"), "wb").write(safetensors([100000, 100000, 100]))
with zipfile.ZipFile(path("small.ckpt"), "w", zipfile.ZIP_STORED) as z:
    z.writestr("meta.json", "{}")
    z.writestr("model.safetensors", safetensors([4]))
claim_size(path("small.ckpt"), path("huge_claim.ckpt"), "model.safetensors", 0xFFFFFFF0)
print("ok")
