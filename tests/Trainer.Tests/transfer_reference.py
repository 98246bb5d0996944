"""PyTorch side of the transfer-learning tests (Debian's python3-torch/torchvision).

make DIR   writes torchvision weights and bad weights files into DIR:
           r18.pth (resnet18, 7 classes, zip format), inputs.pth ({"x": input batch, "logits": its logits}),
           r18_legacy.pth (legacy format), r18_script.pt (TorchScript), evil.pth (a pickle whose
           loading would run a shell command creating DIR/pwned), mobilenet.pth (another architecture)
check EXPORTED ORIGINAL
           loads EXPORTED strictly into torchvision's resnet18(num_classes=7) and prints
           "same-keys-and-order TRUE/FALSE bit-identical TRUE/FALSE"
mlnet EXPORTED CLASSES
           loads EXPORTED strictly into torchvision's ResNet(BasicBlock, [2, 2, 2, 3], num_classes=CLASSES)
           (mlnet_resnet18) and prints the number of tensors
"""
import os
import sys

import torch
import torchvision


class Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, ("touch " + self.target,))


def make(folder):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=7)
    # Non-trivial BatchNorm statistics, so a lost buffer shows in the logits.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.num_batches_tracked.fill_(17)
    model.eval()
    torch.save(model.state_dict(), os.path.join(folder, "r18.pth"))
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
    torch.save({"x": x, "logits": logits}, os.path.join(folder, "inputs.pth"))
    torch.save(model.state_dict(), os.path.join(folder, "r18_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.jit.trace(model, x).save(os.path.join(folder, "r18_script.pt"))
    torch.save({"conv1.weight": Evil(os.path.join(folder, "pwned"))}, os.path.join(folder, "evil.pth"))
    torch.save(torchvision.models.mobilenet_v2(num_classes=7).state_dict(), os.path.join(folder, "mobilenet.pth"))


def check(exported, original):
    a = torch.load(original)
    b = torch.load(exported)
    model = torchvision.models.resnet18(num_classes=7)
    model.load_state_dict(b, strict=True)
    same_order = list(a.keys()) == list(b.keys())
    identical = all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)
    print(f"same-keys-and-order {same_order} bit-identical {identical}")


def mlnet(exported, classes):
    from torchvision.models.resnet import BasicBlock, ResNet
    model = ResNet(BasicBlock, [2, 2, 2, 3], num_classes=int(classes))
    state = torch.load(exported)
    model.load_state_dict(state, strict=True)
    print(len(state))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "mlnet":
        mlnet(sys.argv[2], sys.argv[3])
    else:
        check(sys.argv[2], sys.argv[3])
