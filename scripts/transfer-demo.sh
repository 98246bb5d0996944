#!/usr/bin/env bash
# The transfer-learning demonstration of docs/transfer-learning.md: mlnet_resnet18 on Imagenette,
# fine-tuned from the ImageNet-pretrained weights of the NuGet package
# Microsoft.ML.DnnImageFeaturizer.ResNet18 (head only, last stage, everything) and trained from
# scratch on the same budget, with all the training images (3 epochs) and with 20 a class
# (15 epochs). Prints the table (validation top-1 after the last epoch, trainable parameters,
# wall time). Usage: scripts/transfer-demo.sh [DATA_ROOT] [OUT]   (about 30 minutes on 2 cores)
# TRAINER=path/to/trainer runs another build (e.g. a copy, so the checkout can be rebuilt meanwhile).
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-../shared/data/imagenette-160}"
out="${2:-runs/transfer-demo}"
trainer="${TRAINER:-./trainer}"
onnx="${NUGET_PACKAGES:-$HOME/.nuget/packages}/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx"
mkdir -p pretrained "$out"
if [ ! -f pretrained/mlnet_resnet18.ckpt ]; then
  $trainer import --from "$onnx" --model mlnet_resnet18 --out pretrained/mlnet_resnet18.ckpt
fi
for size in all 20; do
  extra=()
  [ "$size" = 20 ] && extra=(--set data.per_class=20 --set train.epochs=15)
  for variant in head last-stage all scratch; do
    run="$out/$variant-$size"
    [ -f "$run/summary.json" ] && grep -q '"finished": true' "$run/summary.json" && continue
    rm -rf "$run"
    $trainer train --config "configs/transfer-imagenette-$variant.yaml" --out "$run" \
      --set data.root="$root" --set log.progress=false "${extra[@]}" > "$run.log" 2>&1 || { cat "$run.log"; exit 1; }
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
names = {"head": "fine-tune: head only", "last-stage": "fine-tune: last stage + head", "all": "fine-tune: everything", "scratch": "from scratch"}
print("| images a class | start | val top-1 (final) | best (epoch) | trainable params | wall time |")
print("| --- | --- | --- | --- | --- | --- |")
for size in ["all", "20"]:
    for variant in ["head", "last-stage", "all", "scratch"]:
        s = json.load(open(os.path.join(out, f"{variant}-{size}", "summary.json")))
        label = "200 (all)" if size == "all" else "20"
        print(f"| {label} | {names[variant]} | {s['final']['val_top1'] * 100:.1f}% | {s['best']['val_top1'] * 100:.1f}% ({s['best']['epoch']}) "
              f"| {s['trainable_params']:,} | {s['wall_seconds']:.0f} s |")
PY
