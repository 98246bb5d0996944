"""PyTorch's CPU inference of a torchvision model (eval, no_grad, channels-last input), for
scripts/bench-onnx.sh: the same figures `trainer bench --onnx` gives TorchSharp and ONNX Runtime.
Usage: bench_onnx_pytorch.py MODEL BATCH STEPS THREADS; prints one JSON line."""
import json
import statistics
import sys
import time

import torch
import torchvision

name, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
side = 224
model = getattr(torchvision.models, name)().eval()
x = torch.randn(batch, 3, side, side).contiguous(memory_format=torch.channels_last)
times = []
with torch.no_grad():
    for i in range(3 + steps):
        start = time.perf_counter()
        model(x)[0, 0].item()
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"model": name, "batch": batch, "threads": threads, "torch": torch.__version__,
                  "images_per_s": round(batch / (sum(times) / len(times) / 1000), 2),
                  "latency_ms_median": round(statistics.median(times), 3)}))
