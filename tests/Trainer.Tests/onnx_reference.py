#!/usr/bin/python3
"""Reference for OnnxImportTests, independent of the C# reader: Debian's python3-onnx reads the
files, and a small interpreter walks the graphs node by node with torch.nn.functional.

Usage: /usr/bin/python3 onnx_reference.py OUT_DIR MODEL PREPROCESS PIXELS N SIZE
Writes OUT_DIR/initializers.bin (every float initializer of MODEL, float32, concatenated, as
onnx.numpy_helper reads it) with OUT_DIR/initializers.txt (one line per initializer:
"name byte_offset dim dim ..."), OUT_DIR/features.bin: float32 (N, C) features of the uint8
RGB images in PIXELS (N, 3, SIZE, SIZE) after PREPROCESS and MODEL, and three copies of MODEL
that the importer must refuse: grouped.onnx (the first 3x3 conv with group 2), epsilon.onnx (the
first BatchNormalization with epsilon 1e-3), padding.onnx (the stem conv padded 2 on every side)."""
import sys
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

out, model_path, prep_path, pixels_path, n, size = sys.argv[1:7]
n, size = int(n), int(size)


def attributes(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def pad(x, pads, value=0.0):
    """ONNX pads [h_begin, w_begin, h_end, w_end] as F.pad's (w_begin, w_end, h_begin, h_end)."""
    hb, wb, he, we = pads
    return F.pad(x, (wb, we, hb, he), value=value)


def run(model, x):
    g = model.graph
    values = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
    inputs = [i.name for i in g.input if i.name not in values]
    assert len(inputs) == 1, inputs
    values[inputs[0]] = x
    for node in g.node:  # ONNX requires topological order
        a = attributes(node)
        i = [values[name] for name in node.input]
        op = node.op_type
        if op == "Conv":
            assert a.get("group", 1) == 1 and all(d == 1 for d in a.get("dilations", [1, 1]))
            y = F.conv2d(pad(i[0], a.get("pads", [0, 0, 0, 0])), i[1], i[2] if len(i) > 2 else None, stride=a["strides"])
        elif op == "BatchNormalization":
            y = F.batch_norm(i[0], i[3], i[4], i[1], i[2], training=False, eps=a["epsilon"])
        elif op == "Relu":
            y = F.relu(i[0])
        elif op == "MaxPool":
            y = F.max_pool2d(pad(i[0], a.get("pads", [0, 0, 0, 0]), float("-inf")), a["kernel_shape"], a["strides"])
        elif op == "AveragePool":
            assert all(p == 0 for p in a.get("pads", [0, 0, 0, 0]))
            y = F.avg_pool2d(i[0], a["kernel_shape"], a["strides"])
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "Sub":
            y = i[0] - i[1]
        elif op == "Split":
            y = torch.split(i[0], a["split"], dim=a["axis"])
        elif op == "Concat":
            y = torch.cat(i, dim=a["axis"])
        else:
            raise SystemExit(f"operator {op} is not interpreted")
        for name, value in zip(node.output, y if isinstance(y, tuple) else (y,)):
            values[name] = value
    assert len(g.output) == 1
    return values[g.output[0].name]


model = onnx.load(model_path)
with open(f"{out}/initializers.bin", "wb") as blob, open(f"{out}/initializers.txt", "w") as index:
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        assert array.dtype == np.float32, (init.name, array.dtype)
        index.write(" ".join([init.name, str(blob.tell())] + [str(d) for d in array.shape]) + "\n")
        blob.write(array.astype("<f4").tobytes())

pixels = np.fromfile(pixels_path, dtype=np.uint8).reshape(n, 3, size, size)
with torch.no_grad():
    x = run(onnx.load(prep_path), torch.from_numpy(pixels.astype(np.float32)))
    features = run(model, x).flatten(1)
features.numpy().astype("<f4").tofile(f"{out}/features.bin")
print(f"features {tuple(features.shape)}, |max| {features.abs().max().item():.4g}")


def variant(name, op, change):
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    node = next(n for n in copy.graph.node if n.op_type == op and change(n))
    onnx.save(copy, f"{out}/{name}.onnx")


def set_attribute(node, name, value):
    attribute = next((a for a in node.attribute if a.name == name), None)
    if attribute is None:
        return False
    if isinstance(value, list):
        del attribute.ints[:]
        attribute.ints.extend(value)
    elif isinstance(value, float):
        attribute.f = value
    else:
        attribute.i = value
    return True


variant("grouped", "Conv", lambda n: list(attributes(n)["kernel_shape"]) == [3, 3] and set_attribute(n, "group", 2))
variant("epsilon", "BatchNormalization", lambda n: set_attribute(n, "epsilon", 1e-3))
variant("padding", "Conv", lambda n: list(attributes(n)["kernel_shape"]) == [7, 7] and set_attribute(n, "pads", [2, 2, 2, 2]))
