#!/usr/bin/python3
"""Input pipeline speed: this tool's image-folder loader against torchvision's ImageFolder +
DataLoader on the same folder, in one run, at equal worker counts and input size.

Both pipelines do RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3) to SIZE, a random horizontal
flip, conversion to float and ImageNet normalisation, and batch 256 images; each measurement is one
untimed warm-up epoch then EPOCHS timed epochs. The two run alternately (A/B) REPS times.

Usage (from the repository root): /usr/bin/python3 scripts/bench-input-pipeline.py [DIR] [SIZE] [REPS] [EPOCHS]
(defaults ../shared/data/imagenette-160, 160, 3, 3)."""
import json, statistics, subprocess, sys, time

import torch
import torchvision
from torchvision import transforms

root = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/imagenette-160"
size = int(sys.argv[2]) if len(sys.argv) > 2 else 160
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
torch.set_num_threads(1)  # DataLoader workers each use one thread, as PyTorch sets them


def torchvision_rate(workers):
    tf = transforms.Compose([
        transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    data = torchvision.datasets.ImageFolder(f"{root}/train", tf)
    loader = torch.utils.data.DataLoader(data, batch_size=256, shuffle=True, num_workers=workers, persistent_workers=True)
    for _ in loader:  # warm-up epoch
        pass
    start, count = time.perf_counter(), 0
    for _ in range(epochs):
        for images, _ in loader:
            count += images.shape[0]
    return count / (time.perf_counter() - start)


def trainer_rate(workers):
    out = subprocess.check_output(["./trainer", "bench", "--data", root, "--input", f"3x{size}x{size}",
                                   "--workers", str(workers), "--batch", "256", "--epochs", str(epochs), "--json"])
    return json.loads(out)["images_per_s"]


subprocess.check_call(["./trainer", "models"], stdout=subprocess.DEVNULL)  # build once, outside the timing
print(f"{root}, {size}x{size}, batch 256, {epochs} timed epochs, {reps} alternating repetitions")
print("| workers | trainer images/s (median) | torchvision images/s (median) | ratio min / median / max |")
print("| --- | --- | --- | --- |")
for workers in (1, 2):
    ours, theirs = [], []
    for _ in range(reps):
        ours.append(trainer_rate(workers))
        theirs.append(torchvision_rate(workers))
    ratios = sorted(a / b for a, b in zip(ours, theirs))
    print(f"| {workers} | {statistics.median(ours):.0f} | {statistics.median(theirs):.0f} | "
          f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} |")
