#!/usr/bin/env bash
# Data-parallel scaling on this machine (docs/distributed.md), all in one run so the ratios compare
# like with like: the synthetic training step (`trainer bench`) of ResNet-20 at global batch 128
# and ResNet-18 at 224x224, batch 32, as 1 process x 1 thread, 1 process x 2 threads and
# 2 ranks x 1 thread; then the same three shapes on a real training run (ResNet-20 on CIFAR-10,
# data loading and evaluation included; the second epoch's time).
# Usage: scripts/bench-distributed.sh [CIFAR10_ROOT] [STEPS]   (about 10 minutes on 2 cores)
# TRAINER=path/to/trainer runs another build.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-../shared/data/cifar10}"
steps="${2:-20}"
trainer="${TRAINER:-./trainer}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "# $(date -u +%Y-%m-%d) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for spec in "resnet20 128" "resnet18 32"; do
  read -r model batch <<<"$spec"
  $trainer bench --model "$model" --batch "$batch" --steps "$steps" --threads 1 --json > "$out/$model-1x1.json"
  $trainer bench --model "$model" --batch "$batch" --steps "$steps" --threads 2 --json > "$out/$model-1x2.json"
  $trainer bench --model "$model" --batch "$batch" --steps "$steps" --threads 1 --nproc 2 --json > "$out/$model-2x1.json"
done
common=(--config configs/resnet20-cifar10.yaml --set "data.root=$root" --set train.iterations=0 --set train.epochs=2
        --set log.histograms=false --set log.image_grid=false --set log.progress=false)
$trainer train "${common[@]}" --set threads=1 --out "$out/train-1x1" > /dev/null
$trainer train "${common[@]}" --set threads=2 --out "$out/train-1x2" > /dev/null
$trainer train "${common[@]}" --set threads=1 --nproc 2 --out "$out/train-2x1" > /dev/null
/usr/bin/python3 - "$out" <<'PY'
import csv, json, os, sys
out = sys.argv[1]
def rate(v):
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"
print("| workload | 1 process x 1 thread | 1 process x 2 threads | 2 ranks x 1 thread | (a) 2x1 / 1x1 | (b) 2x1 / 1x2 | allreduce per step (share) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for model, label in [("resnet20", "ResNet-20 step, batch 128, 32x32"), ("resnet18", "ResNet-18 step, batch 32, 224x224")]:
    r = {k: json.load(open(os.path.join(out, f"{model}-{k}.json"))) for k in ["1x1", "1x2", "2x1"]}
    ips = {k: v["train_images_per_s"] for k, v in r.items()}
    two = r["2x1"]
    print(f"| {label} | {rate(ips['1x1'])} img/s | {rate(ips['1x2'])} img/s | {rate(ips['2x1'])} img/s | {ips['2x1'] / ips['1x1']:.2f} "
          f"| {ips['2x1'] / ips['1x2']:.2f} | {two['allreduce_ms_per_step']:.1f} ms ({two['allreduce_share'] * 100:.1f}%) |")
def epoch2(run):
    rows = list(csv.DictReader(open(os.path.join(out, run, "metrics.csv"))))
    return float(rows[1]["seconds"]), float(rows[1]["val_top1"])
t = {k: epoch2(f"train-{k}") for k in ["1x1", "1x2", "2x1"]}
ips = {k: 10000 / v[0] for k, v in t.items()}
print(f"| ResNet-20 training, CIFAR-10 (epoch 2: 10,000 training + 10,000 test images) | {t['1x1'][0]:.1f} s | {t['1x2'][0]:.1f} s | {t['2x1'][0]:.1f} s "
      f"| {ips['2x1'] / ips['1x1']:.2f} | {ips['2x1'] / ips['1x2']:.2f} | |")
PY
