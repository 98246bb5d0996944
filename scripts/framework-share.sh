#!/usr/bin/env bash
# Where a training process spends its CPU time, measured with perf (Linux's sampling profiler):
# the share in libtorch and what it calls (libtorch, c10, OpenMP, oneDNN's generated kernels, the C
# library, the kernel) against the share in the framework around it (.NET's runtime and JIT
# compiler, compiled C# code: this tool and TorchSharp, TorchSharp's native glue).
# `trainer bench` reports an upper bound of the framework's share; this measures it. The whole
# process is sampled, start-up (JIT compilation, building the model) included, so use enough steps.
#
# Usage: scripts/framework-share.sh [bench arguments...]
#   e.g. scripts/framework-share.sh --model resnet20 --batch 128 --steps 30 --threads 2
# Needs perf (Debian: linux-perf) and permission to profile your own processes
# (kernel.perf_event_paranoid <= 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -gt 0 ] || set -- --model resnet20 --batch 128 --steps 30 --threads 2
./trainer models >/dev/null   # build outside the measurement
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
perf record -q -F 999 -o "$data/perf.data" -- ./trainer bench "$@" --json > "$data/bench.json" 2>/dev/null
cat "$data/bench.json"
perf report -i "$data/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | awk '
  /^#/ || NF < 2 { next }
  {
    share = $1; sub(/%/, "", share); dso = $2
    framework = dso ~ /^(libcoreclr|libclrjit|libhostfxr|libhostpolicy|libSystem\.|libLibTorchSharp|System\.|Microsoft\.|Trainer|trainer|TorchSharp|memfd:doublemapper)/
    if (framework) fw += share; else lib += share
    if (n++ < 12) printf "  %6.2f%%  %s%s\n", share, dso, framework ? "  (framework)" : ""
  }
  END { printf "framework (.NET, TorchSharp, this tool): %.2f%%   libtorch and below: %.2f%%\n", fw, lib }'
