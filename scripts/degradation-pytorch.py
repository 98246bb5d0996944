#!/usr/bin/python3
"""The degradation study's CPU preset (configs/degradation-cifar10-cpu.yaml) in plain PyTorch, to time
it beside `trainer study depth` on the same machine in the same session (docs/degradation.md).

The recipe of the project's PyTorch reference (../shared/notes/recipes.md): the ResNet paper's CIFAR
nets (6n+2 layers, option A shortcuts) and their plain counterparts, He-initialised convolutions
(fan_out, as torchvision), PyTorch's default fc init; the 10,000 training images of data_batch_1.bin
and the 10,000 test images; batch 128, shuffled each epoch, last smaller batch kept; per-sample
pad-4 random crop and horizontal flip; per-channel normalisation measured on the training images;
SGD momentum 0.9, weight decay 1e-4 on convolution and fc weights only; ITERATIONS iterations, lr
warmed up linearly from 0.01 to 0.1 over the first 100, divided by 10 at 300 and 450. Like the
trainer, it evaluates the whole test set at each epoch's end and at the last iteration, and reports
the training error of the last 50 batches (augmented images, training mode).

Usage (from the repository root):
  /usr/bin/python3 scripts/degradation-pytorch.py DATA_ROOT [NETS] [ITERATIONS] [THREADS]
  NETS: comma-separated of plain20,plain56,resnet20,resnet56 (default all); ITERATIONS 600; THREADS 2.
Prints one JSON line per net: net, train_error_pct, test_error_pct, wall_seconds, train_seconds."""
import json, os, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

root = sys.argv[1]
nets = sys.argv[2].split(",") if len(sys.argv) > 2 else ["plain20", "plain56", "resnet20", "resnet56"]
iterations = int(sys.argv[3]) if len(sys.argv) > 3 else 600
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
torch.set_num_threads(threads)
BATCH, WARMUP, MILESTONES, LOG_LAST = 128, 100, (300, 450), 50


def read_cifar(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64))


class Block(nn.Module):
    def __init__(self, cin, cout, stride, residual):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.stride, self.extra, self.residual = stride, cout - cin, residual

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.residual:  # option A: subsample, zero-pad the new channels
            s = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
            if self.extra:
                s = F.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
            y = y + s
        return F.relu(y)


class CifarNet(nn.Module):
    def __init__(self, depth, residual):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                layers.append(Block(cin, cout, stride if i == 0 else 1, residual))
                cin = cout
        self.layers, self.fc = nn.Sequential(*layers), nn.Linear(64, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        y = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


def lr_at(step):  # step counts from 0
    if step < WARMUP:
        return 0.01 + (0.1 - 0.01) * step / WARMUP
    return 0.1 * 0.1 ** sum(step >= m for m in MILESTONES)


def augment(padded, generator):
    """Per-sample pad-4 random crop and horizontal flip of uint8 images, then float."""
    n = padded.shape[0]
    dy = torch.randint(0, 9, (n,), generator=generator)
    dx = torch.randint(0, 9, (n,), generator=generator)
    crops = torch.stack([p[:, y:y + 32, x:x + 32] for p, y, x in zip(padded, dy.tolist(), dx.tolist())])
    flip = torch.rand(n, generator=generator) < 0.5
    crops[flip] = crops[flip].flip(3)
    return crops.float()


def run(name):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    depth, residual = int(name.lstrip("plainresnet")), name.startswith("resnet")
    train_x, train_y = read_cifar(os.path.join(root, "cifar-10-batches-bin", "data_batch_1.bin"))
    test_x, test_y = read_cifar(os.path.join(root, "cifar-10-batches-bin", "test_batch.bin"))
    scaled = train_x.float() / 255
    mean, std = scaled.mean((0, 2, 3)).view(1, 3, 1, 1), scaled.std((0, 2, 3)).view(1, 3, 1, 1)
    normalise = lambda x: (x / 255 - mean) / std
    model = CifarNet(depth, residual)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0}], lr=0.01, momentum=0.9)

    def evaluate():
        model.eval()
        wrong = 0
        with torch.no_grad():
            for i in range(0, len(test_x), 500):
                wrong += (model(normalise(test_x[i:i + 500].float())).argmax(1) != test_y[i:i + 500]).sum().item()
        model.train()
        return 100.0 * wrong / len(test_x)

    padded = F.pad(train_x, (4, 4, 4, 4))
    start, eval_seconds, step, recent, test_error = time.perf_counter(), 0.0, 0, [], None
    while step < iterations:
        order = torch.randperm(len(train_x), generator=generator)
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            x, y = normalise(augment(padded[idx], generator)), train_y[idx]
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            recent = (recent + [((logits.argmax(1) != y).sum().item(), len(y))])[-LOG_LAST:]
            step += 1
            if step == iterations:
                break
        t = time.perf_counter()
        test_error = evaluate()  # each epoch's end, and the last iteration
        eval_seconds += time.perf_counter() - t
    wall = time.perf_counter() - start
    train_error = 100.0 * sum(w for w, _ in recent) / sum(n for _, n in recent)
    print(json.dumps({"net": name, "iterations": iterations, "train_error_pct": round(train_error, 2),
                      "test_error_pct": round(test_error, 2), "wall_seconds": round(wall, 1),
                      "train_seconds": round(wall - eval_seconds, 1), "threads": threads,
                      "torch": torch.__version__}), flush=True)


for net in nets:
    run(net)
