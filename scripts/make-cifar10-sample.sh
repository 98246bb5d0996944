#!/usr/bin/env bash
# Cuts the embedded CIFAR-10 sample (data/cifar10-sample) from the official binary files.
# Only the first records are taken: in ../shared/data/cifar10 those are the original, lossless
# pixels (training records 0-3,999 and test records 0-999; see its provenance.tsv).
# Usage: scripts/make-cifar10-sample.sh [SOURCE_DIR] [TRAIN_COUNT] [TEST_COUNT]
set -euo pipefail
src=${1:-../shared/data/cifar10/cifar-10-batches-bin}
train=${2:-3000}
test=${3:-1000}
record=3073
out=data/cifar10-sample/cifar-10-batches-bin
mkdir -p "$out"
head -c $((train * record)) "$src/data_batch_1.bin" > "$out/data_batch_1.bin"
head -c $((test * record)) "$src/test_batch.bin" > "$out/test_batch.bin"
cp "$src/batches.meta.txt" "$out/batches.meta.txt"
sha256sum "$out"/*.bin
