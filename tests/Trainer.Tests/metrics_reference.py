"""Loss, top-1 and top-5 of given logits and labels, computed by PyTorch (LearningTests.cs).

Usage: metrics_reference.py LOGITS.bin LABELS.bin CLASSES
LOGITS.bin: float32 little-endian, N x CLASSES, row-major; LABELS.bin: int64 little-endian, N.
Prints one JSON line: the mean cross-entropy over the samples (in float64), the counts of
samples whose label is the top-1 / among the top-5 logits (torch.topk), the sample count, and
how many rows have a tie that could make those counts depend on how ties are broken.
Debian's python3-torch under /usr/bin/python3.
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

classes = int(sys.argv[3])
logits = torch.from_numpy(np.fromfile(sys.argv[1], dtype="<f4").reshape(-1, classes).copy())
labels = torch.from_numpy(np.fromfile(sys.argv[2], dtype="<i8").copy())
assert logits.shape[0] == labels.shape[0], (logits.shape, labels.shape)

loss = F.cross_entropy(logits.double(), labels, reduction="mean").item()
k = min(5, classes)
top = torch.topk(logits, k, dim=1)
hits = top.indices.eq(labels.unsqueeze(1))
# A tie between the first and second logit, or between the k-th and the next, decides top-1 or top-k by tie-breaking alone.
ordered = torch.sort(logits, dim=1, descending=True).values
ties = (ordered[:, 0] == ordered[:, 1]) | ((ordered[:, k - 1] == ordered[:, k]) if k < classes else torch.zeros_like(labels, dtype=torch.bool))
print(json.dumps({
    "loss": loss,
    "top1": int(hits[:, 0].sum()),
    "top5": int(hits.any(dim=1).sum()),
    "samples": int(labels.shape[0]),
    "ties": int(ties.sum()),
}))
