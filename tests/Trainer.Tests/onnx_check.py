"""Debian's onnx checker (python3-onnx 1.12) on each ONNX file given: full_check runs shape inference too.
Prints one line per model and 'checked N'; exits non-zero on the first model the checker rejects."""
import sys
import time

import onnx

for path in sys.argv[1:]:
    start = time.perf_counter()
    # By path, the checker sees external weight files (it checks they exist) without reading them.
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path, load_external_data=False)
    print(f"{path}: ir {model.ir_version}, opset {model.opset_import[0].version}, {len(model.graph.node)} nodes: ok "
          f"({time.perf_counter() - start:.1f} s)")
print(f"checked {len(sys.argv) - 1}")
