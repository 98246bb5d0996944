#!/usr/bin/python3
"""Training throughput of this tool against PyTorch on the same machine, models, batch sizes and
thread count, measured alternately (A/B) several times; prints each ratio as min / median / max.

PyTorch side: Debian's python3-torch and python3-torchvision under /usr/bin/python3; torchvision's
model definitions for the ImageNet models and an equivalent CIFAR ResNet-20 (option A shortcuts).
Both sides run the same step: forward, cross-entropy, backward, SGD (momentum 0.9, weight decay
1e-4) on synthetic data, 3 warm-up steps, then STEPS timed steps. PyTorch is measured in its default
memory format and in channels_last; the ratio is against the faster of the two.
The last row is one epoch of the embedded default run (ResNet-20 on the 3,000-image CIFAR-10
sample with pad-crop-flip, batch 256, then evaluation of the 1,000 test images), data loading
included: `trainer train` (the epoch's seconds from metrics.csv) against a PyTorch loop with
torchvision transforms and a 2-worker DataLoader.

Usage (from the repository root): /usr/bin/python3 scripts/bench-vs-pytorch.py [REPS] [STEPS] [THREADS] [CASES]
(defaults 3, 10, 2, all; CASES is a comma-separated subset of resnet20,resnet18,mobilenet_v2,default)."""
import csv, json, os, statistics, subprocess, sys, tempfile, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
cases = sys.argv[4].split(",") if len(sys.argv) > 4 else ["resnet20", "resnet18", "mobilenet_v2", "default"]
torch.set_num_threads(threads)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        s = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.extra:
            s = F.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(y + s)


class ResNet20(nn.Module):
    """The ResNet paper's CIFAR net with n = 3 (option A shortcuts), as `resnet20` here."""
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(Block(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers, self.fc = nn.Sequential(*layers), nn.Linear(64, 10)

    def forward(self, x):
        y = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


def pytorch_rate(name, batch, side, channels_last):
    model = ResNet20() if name == "resnet20" else getattr(torchvision.models, name)()
    classes = 10 if name == "resnet20" else 1000
    x = torch.randn(batch, 3, side, side)
    y = torch.randint(0, classes, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train()
    times = []
    for i in range(3 + steps):
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)   # PyTorch 2's default, as this tool does
        loss.backward()
        opt.step()
        loss.item()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return batch / (sum(times) / len(times))


def trainer_rate(name, batch, side):
    out = subprocess.check_output(["./trainer", "bench", "--model", name, "--batch", str(batch), "--steps", str(steps),
                                   "--input", f"3x{side}x{side}", "--threads", str(threads), "--json"])
    return json.loads(out)["train_images_per_s"]


def sample_records(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


class Records(torch.utils.data.Dataset):
    def __init__(self, path, transform):
        self.images, self.labels = sample_records(path)
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i].transpose(1, 2, 0))), self.labels[i]


def pytorch_default_epoch():
    from torchvision import transforms as T
    root = "data/cifar10-sample/cifar-10-batches-bin"
    train = Records(f"{root}/data_batch_1.bin", T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize([0.49, 0.48, 0.45], [0.25, 0.24, 0.26])]))
    test = Records(f"{root}/test_batch.bin", T.Compose([T.ToTensor(), T.Normalize([0.49, 0.48, 0.45], [0.25, 0.24, 0.26])]))
    model = ResNet20().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    start = time.perf_counter()
    model.train()
    for x, y in torch.utils.data.DataLoader(train, batch_size=256, shuffle=True, num_workers=2):
        loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad(set_to_none=True)   # PyTorch 2's default, as this tool does
        loss.backward()
        opt.step()
        loss.item()
    model.eval()
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(test, batch_size=256, num_workers=2):
            model(x.contiguous(memory_format=torch.channels_last)).argmax(1)
    return time.perf_counter() - start


def trainer_default_epoch():
    with tempfile.TemporaryDirectory() as out:
        run = os.path.join(out, "run")
        subprocess.check_call(["./trainer", "train", "--out", run, "--set", "train.epochs=1", "--set", "log.progress=false",
                               "--set", "log.histograms=false", "--set", "log.image_grid=false", "--set", f"threads={threads}"],
                              stdout=subprocess.DEVNULL)
        with open(os.path.join(run, "metrics.csv")) as f:
            return float(next(csv.DictReader(f))["seconds"])


subprocess.check_call(["./trainer", "models"], stdout=subprocess.DEVNULL)  # build once, outside the timing
print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}, {threads} threads, {steps} timed steps, {reps} alternating repetitions")
print("| case | trainer (median) | PyTorch best format (median) | ratio min / median / max |")
print("| --- | --- | --- | --- |")
for name, batch, side in (("resnet20", 128, 32), ("resnet18", 16, 224), ("mobilenet_v2", 16, 224)):
    if name not in cases:
        continue
    ours, theirs = [], []
    for _ in range(reps):
        ours.append(trainer_rate(name, batch, side))
        theirs.append(max(pytorch_rate(name, batch, side, False), pytorch_rate(name, batch, side, True)))
    ratios = sorted(a / b for a, b in zip(ours, theirs))
    print(f"| {name}, batch {batch}, {side}x{side} (images/s) | {statistics.median(ours):.1f} | {statistics.median(theirs):.1f} | "
          f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} |")
if "default" not in cases:
    sys.exit(0)
ours, theirs = [], []
for _ in range(reps):
    ours.append(trainer_default_epoch())
    theirs.append(pytorch_default_epoch())
ratios = sorted(b / a for a, b in zip(ours, theirs))   # seconds: PyTorch's over ours, so above 1 is faster
print(f"| default run, one epoch incl. data and evaluation (seconds) | {statistics.median(ours):.1f} | {statistics.median(theirs):.1f} | "
      f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} |")
