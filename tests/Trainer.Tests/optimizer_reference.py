"""Runs torch.optim on a fixed problem for the optimizer tests (OptimizerTests.cs).

Usage: optimizer_reference.py IN.json OUT.json
IN.json holds the initial weight (3x4, decayed) and bias (4, not decayed), a gradient for each
step, the learning rate of each step, and the cases to run; OUT.json gets each case's final
weight and bias. Debian's python3-torch under /usr/bin/python3.
"""
import json
import sys

import torch

spec = json.load(open(sys.argv[1]))


def make(case, params):
    name, o = case["optimizer"], case
    groups = [{"params": [params[0]], "weight_decay": o["weight_decay"]}, {"params": [params[1]], "weight_decay": 0.0}]
    lr = spec["lrs"][0]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=o["momentum"], dampening=o["dampening"], nesterov=o["nesterov"])
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=o["alpha"], eps=o["eps"], momentum=o["momentum"])
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=tuple(o["betas"]), eps=o["eps"])
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(o["betas"]), eps=o["eps"])
    raise ValueError(name)


out = {}
for case in spec["cases"]:
    weight = torch.tensor(spec["weight"], dtype=torch.float32).reshape(3, 4).requires_grad_()
    bias = torch.tensor(spec["bias"], dtype=torch.float32).requires_grad_()
    optimizer = make(case, [weight, bias])
    for step, lr in enumerate(spec["lrs"]):
        for group in optimizer.param_groups:
            group["lr"] = lr
        weight.grad = torch.tensor(spec["weight_grads"][step], dtype=torch.float32).reshape(3, 4)
        bias.grad = torch.tensor(spec["bias_grads"][step], dtype=torch.float32)
        if case["clip"] > 0:
            torch.nn.utils.clip_grad_norm_([weight, bias], case["clip"])
        optimizer.step()
    out[case["name"]] = {"weight": weight.detach().flatten().tolist(), "bias": bias.detach().tolist()}
json.dump(out, open(sys.argv[2], "w"))
