#!/usr/bin/env python3
"""Prints the Markdown table of docs/models.md: every registered model with its parameters,
multiply-accumulates and activation memory at its native input (from `trainer summary --json`),
and the paper's reported figure where the project's notes give one.
Usage (from the repository root): python3 scripts/models-table.py > /tmp/table.md"""
import json, subprocess

PAPER = {
    "resnet20": "8.75 (C10 error)", "resnet32": "7.51 (C10 error)", "resnet44": "7.17 (C10 error)",
    "resnet56": "6.97 (C10 error)", "resnet110": "6.43 (C10 error)", "resnet1202": "7.93 (C10 error)",
    "plain18": "27.94 (top-1 error)", "plain34": "28.54 (top-1 error)", "resnet18": "27.88 (top-1 error)",
    "resnet34": "25.03 (top-1 error)", "resnet50": "22.85 (top-1 error, 10-crop)", "resnet101": "21.75 (top-1 error, 10-crop)",
    "resnet152": "21.43 (top-1 error, 10-crop)", "vgg16": "28.07 (top-1 error, 10-crop, ResNet paper)",
    "resnext50_32x4d": "22.2 (top-1 error)", "googlenet": "6.67 (top-5 error)", "inception_v3": "21.2 (top-1 error)",
    "inception_v4": "20.0 (top-1 error)", "inception_resnet_v2": "19.9 (top-1 error)",
    "shufflenet_v2_x0_5": "39.7 (top-1 error)", "shufflenet_v2_x1_0": "30.6 (top-1 error)",
    "shufflenet_v2_x1_5": "27.4 (top-1 error)", "shufflenet_v2_x2_0": "25.1 (top-1 error)",
    "densenet121": "25.0 (top-1 error)", "densenet_bc_100_12": "4.51 (C10+ error)",
    "mobilenet_v1": "70.6 (top-1 accuracy)", "mobilenet_v2": "72.0 (top-1 accuracy)",
    "lenet5": "0.95 (MNIST error)", "preact_resnet110": "6.37 (C10 error)", "preact_resnet164": "5.46 (C10 error)",
    "preact_resnet1001": "4.92 (C10 error)", "resnext29_8x64d": "3.65 (C10 error)", "resnext29_16x64d": "3.58 (C10 error)",
    "se_resnet50": "23.29 (top-1 error)", "efficientnet_b0": "77.1 (top-1 accuracy)", "efficientnet_b1": "79.1 (top-1 accuracy)",
    "efficientnet_b2": "80.1 (top-1 accuracy)", "efficientnet_b3": "81.6 (top-1 accuracy)",
}
TORCHVISION = {"alexnet": "56.522", "vgg16": "71.592", "googlenet": "69.778", "resnet18": "69.758", "resnet50": "76.130",
               "resnext50_32x4d": "77.618", "densenet121": "74.434", "mobilenet_v2": "71.878", "mnasnet1_0": "73.456",
               "efficientnet_b0": "77.692", "efficientnet_b1": "78.642", "efficientnet_b2": "80.608", "efficientnet_b3": "82.008",
               "inception_v3": "77.294", "shufflenet_v2_x0_5": "60.552", "shufflenet_v2_x1_0": "69.362", "shufflenet_v2_x1_5": "72.996"}

def trainer(*args):
    return json.loads(subprocess.check_output(["./trainer", *args]))

print("| model | family | input | parameters | MACs | activation memory | paper | torchvision weights top-1 (%) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for entry in trainer("models", "--json"):
    s = trainer("summary", "--model", entry["name"], "--json")
    print(f"| `{s['model']}` | {entry['family']} | {'x'.join(map(str, s['input']))} | {s['params']:,} | {s['macs'] / 1e9:.3f} G "
          f"| {s['activation_bytes'] / 2**20:.1f} MB | {PAPER.get(s['model'], '-')} | {TORCHVISION.get(s['model'], '-')} |")
