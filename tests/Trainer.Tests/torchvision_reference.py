#!/usr/bin/python3
"""Writes torchvision reference models for TorchvisionCompatibilityTests.

For each model name: builds torchvision's model with seeded random weights, gives every
BatchNorm a random scale and shift and calibrates its running statistics on random batches (so
eval-mode normalisation is neither the identity nor a collapse of the signal, and the logits
depend strongly on the input: a wrong feature path changes them), saves the state_dict in
PyTorch's zip format (NAME.pth) and its keys in order (NAME.keys.txt, one per line), and
writes two fixed inputs and their logits as little-endian float32 (NAME.input.bin,
NAME.logits.bin; inputs are (2, 3, S, S), logits (2, 1000)).

A model that needs more than SIZE pixels (Inception-v3: at least 75) is named NAME:ITS_SIZE.

Usage: /usr/bin/python3 torchvision_reference.py OUT_DIR SIZE NAME[:SIZE] [NAME[:SIZE] ...]
"""
import os, sys
import torch, torchvision

out, default_size, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
torch.set_num_threads(2)
for spec in names:
    name, _, own_size = spec.partition(":")
    size = int(own_size) if own_size else default_size
    torch.manual_seed(0)
    # GoogLeNet: the inference network (no auxiliary classifiers), as torchvision ships its weights.
    options = dict(aux_logits=False, init_weights=True) if name in ("googlenet", "inception_v3") else {}
    model = getattr(torchvision.models, name)(**options)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batches
        model.train()
        calibration = torch.Generator().manual_seed(2)
        for _ in range(2):
            model(torch.randn(8, 3, size, size, generator=calibration))
    model.eval()
    torch.save(model.state_dict(), os.path.join(out, name + ".pth"))
    with open(os.path.join(out, name + ".keys.txt"), "w") as keys:
        keys.write("\n".join(model.state_dict().keys()) + "\n")
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    x.numpy().astype("<f4").tofile(os.path.join(out, name + ".input.bin"))
    y.numpy().astype("<f4").tofile(os.path.join(out, name + ".logits.bin"))
    print(name, tuple(y.shape), float(y.abs().max()))
