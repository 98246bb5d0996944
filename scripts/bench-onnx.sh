#!/usr/bin/env bash
# ONNX Runtime against TorchSharp (and PyTorch, as a reference for TorchSharp) on the CPU: inference
# of resnet50, mobilenet_v2 and efficientnet_b0 at batch 1 and 32 on 2 threads. Each `trainer bench
# --onnx` line measures both runtimes in one process, so its ratio is free of the machine's drift
# between runs; PyTorch runs right after it. Figures for docs/deploy.md.
# Usage: scripts/bench-onnx.sh [STEPS_BATCH1] [STEPS_BATCH32]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
steps1="${1:-30}"
steps32="${2:-5}"
for model in resnet50 mobilenet_v2 efficientnet_b0; do
  for batch in 1 32; do
    steps=$([ "$batch" = 1 ] && echo "$steps1" || echo "$steps32")
    "$here/trainer" bench --model "$model" --onnx --batch "$batch" --steps "$steps" --threads 2 --json
    /usr/bin/python3 "$here/scripts/bench_onnx_pytorch.py" "$model" "$batch" "$steps" 2
  done
done
