"""Debian's onnx checker (python3-onnx 1.12) on each ONNX file given: full_check runs shape inference too.
Prints one line per file and 'checked N'; exits non-zero on the first file the checker rejects."""
import sys

import onnx

for path in sys.argv[1:]:
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    print(f"{path}: ir {model.ir_version}, opset {model.opset_import[0].version}, {len(model.graph.node)} nodes: ok")
print(f"checked {len(sys.argv) - 1}")
