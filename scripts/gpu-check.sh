#!/usr/bin/env bash
# The CUDA path, proved on a Linux machine with an NVIDIA GPU (docs/cuda.md). One command, under
# 10 minutes on one GPU; prints one report at the end: versions, the GPU, each check passed or
# failed, images/s and peak memory. Needs what the README's set-up needs (the .NET SDK) and the
# NuGet package libtorch-cuda-12.8-linux-x64 (restored from nuget.org, or already in the NuGet
# cache on a machine without network). Exit status: 0 when every check passed.
#   scripts/gpu-check.sh [report-file]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
report="${1:-runs/gpu-check/report.txt}"
work="runs/gpu-check"
rm -rf "$work"; mkdir -p "$work"
export TRAINER_BACKEND=cuda
results=()
failed=0
note() { results+=("$1"); echo "== $1"; }
check() { # check NAME COMMAND...: runs it, logs to $work/NAME.log, records passed/failed
  local name="$1"; shift
  if "$@" >"$work/$name.log" 2>&1; then note "passed  $name"; else note "FAILED  $name (see $work/$name.log)"; failed=1; fi
}

gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
if [ -z "$gpu" ]; then echo "no NVIDIA GPU here (nvidia-smi found none): nothing to check"; exit 2; fi
cuda_driver=$(nvidia-smi 2>/dev/null | grep -oE 'CUDA Version: [0-9.]+' | head -n 1)

# 1. The CUDA build, in its own output folder (bin/cuda), and the CUDA tests against it.
check build dotnet build src/Cli -c Release -nologo -p:TorchBackend=cuda
check backend-marker bash -c '[ "$(cat src/Cli/bin/cuda/Release/net10.0/torch-backend.txt)" = cuda ]'
check cuda-tests env TRAINER_TEST_CUDA=1 dotnet test tests/Trainer.Tests -c Release -p:TorchBackend=cuda --filter "Device=cuda|FullyQualifiedName~CudaTests|FullyQualifiedName~NativeCallLiveness"

# 2. The default run on the GPU (auto must pick it).
check default-run bash -c "./trainer train --out $work/default --set log.progress=false && grep -q '\"device\": \"cuda' $work/default/summary.json"

# 3. ResNet-20 for 300 steps, killed (SIGKILL) after its step-150 checkpoint and resumed; the
#    uninterrupted run beside it must end with the same weights (deterministic mode: cuDNN's
#    algorithms are fixed and the dropout-free ResNet draws nothing from the GPU's generator).
r20=(--set model=resnet20 --set train.iterations=300 --set train.batch_size=128 --set data.subset=2048
     --set checkpoint.every_steps=50 --set log.every_iterations=10 --set deterministic=true --set seed=7
     --set log.progress=false --set log.histograms=false --set log.image_grid=false)
check resnet20-whole ./trainer train --device cuda --out "$work/whole" "${r20[@]}"
kill_and_resume() {
  ./trainer train --device cuda --out "$work/killed" "${r20[@]}" & local pid=$!
  # iterations.csv's first column is the step: past 160, last.ckpt holds step 150 (or later).
  for _ in $(seq 1 1200); do
    step=$(tail -n 1 "$work/killed/iterations.csv" 2>/dev/null | cut -d, -f1)
    if [[ "$step" =~ ^[0-9]+$ ]] && [ "$step" -ge 160 ]; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "the run ended before step 160"; return 1; fi
    sleep 0.5
  done
  kill -KILL "$pid"; wait "$pid" 2>/dev/null
  echo "killed at step $step"
  ./trainer train --device cuda --out "$work/killed" --resume
}
check resnet20-killed-and-resumed kill_and_resume
check resume-exact bash -c "./trainer export --checkpoint $work/whole/checkpoints/last.ckpt --out $work/whole.safetensors \
  && ./trainer export --checkpoint $work/killed/checkpoints/last.ckpt --out $work/killed.safetensors \
  && cmp $work/whole.safetensors $work/killed.safetensors"

# 4. bench: ResNet-50 at batch 128, fp32 and bf16.
bench() { ./trainer bench --model resnet50 --batch 128 --steps 20 --device cuda --precision "$1" --json > "$work/bench-$1.json"; }
check bench-fp32 bench fp32
check bench-bf16 bench bf16
figures=$(python3 - "$work" <<'EOF' 2>/dev/null || echo "  (python3 missing: see runs/gpu-check/bench-*.json)"
import json, sys
for p in ("fp32", "bf16"):
    try:
        r = json.load(open(f"{sys.argv[1]}/bench-{p}.json"))
        print(f"  resnet50 batch 128 {p}: train {r['train_images_per_s']:.0f} images/s, inference {r['infer_images_per_s']:.0f} images/s, "
              f"median step {r['step_ms_median']:.1f} ms, peak {r['peak_memory_bytes'] / 2**30:.2f} GiB ({r['peak_memory_kind']})")
    except Exception as e:
        print(f"  resnet50 {p}: no figures ({e})")
EOF
)

{
  echo "Trainer GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "GPU: $gpu ($cuda_driver)"
  echo ".NET SDK $(dotnet --version); TorchSharp $(grep -oE 'TorchSharp" Version="[^"]+' Directory.Packages.props | cut -d'"' -f3); libtorch $(grep -oE 'libtorch-cuda-12.8-linux-x64" Version="[^"]+' Directory.Packages.props | cut -d'"' -f3)"
  printf '%s\n' "${results[@]}"
  echo "$figures"
  [ "$failed" = 0 ] && echo "all checks passed" || echo "some checks FAILED"
} | tee "$report"
exit "$failed"
