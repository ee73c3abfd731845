"""CIFAR-10 ResNet-110 with option-A (parameter-free) shortcuts, as in akamaster/pytorch_resnet_cifar10.

Pattern: the CIFAR ResNets of He et al. 2016 (section 4.2): a 3x3 conv to 16 channels, three stages of
n BasicBlocks at 16, 32 and 64 channels (32x32, 16x16, 8x8), global average pooling and a Linear
classifier, 6n + 2 layers. Each BasicBlock is conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then
ReLU. Where the shape changes, the shortcut is "option A": a ``LambdaLayer`` that subsamples the input
with ``x[:, :, ::2, ::2]`` and zero-pads the channel dimension by planes // 4 on each side
(``F.pad``), so the shortcut has no parameters.

Source: akamaster/pytorch_resnet_cifar10, ``resnet.py`` (``LambdaLayer``, ``BasicBlock``, ``ResNet``,
``_weights_init``, factories ``resnet20/32/44/56/110/1202``). Rewritten here; layer names follow the
current file (``conv1``/``linear``; one revision of the repository prefixes them with
``compressible_``).

Published init: ``_weights_init`` is applied with ``self.apply``: ``kaiming_normal_`` (fan_in, gain
sqrt(2)) on every Conv2d and Linear weight; Linear bias and BatchNorm keep PyTorch defaults (BN weight 1,
bias 0).

Discovery: ``resnet110`` is not a name gradlint calls, so this file adds a ``build()`` wrapper that
returns ``resnet110()`` (the only change a user needs to lint the original file).

Known problem of the original: none. The repository's README reports 6.32 % test error for ResNet-110
(93.7 % accuracy; the paper: 6.43 %) with its published recipe (SGD, momentum 0.9, lr 0.1, weight decay
1e-4, batch 128; for ResNet-110 the trainer warms up at lr 0.01 during the first epoch, as the paper
does for its first 400 iterations). It trains.

Expected linter verdict: trains with its published recipe, so no warning or error is justified.
Without zero-init of the last BN in each block the residual branches add variance at init (the
signal grows along the 54 blocks, BN keeps it bounded); an informational note would be fine.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.init as init

__all__ = ["ResNet", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202"]


def _weights_init(m):
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        init.kaiming_normal_(m.weight)


class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, option="A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option == "A":
                # CIFAR-10 ResNets of the paper: identity on subsampled input, zero-padded channels.
                pad = planes // 4
                self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad), "constant", 0))
            elif option == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(self.expansion * planes),
                )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10):
        super().__init__()
        self.in_planes = 16

        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(block, 16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 64, num_blocks[2], stride=2)
        self.linear = nn.Linear(64, num_classes)

        self.apply(_weights_init)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


def resnet20():
    return ResNet(BasicBlock, [3, 3, 3])


def resnet32():
    return ResNet(BasicBlock, [5, 5, 5])


def resnet44():
    return ResNet(BasicBlock, [7, 7, 7])


def resnet56():
    return ResNet(BasicBlock, [9, 9, 9])


def resnet110():
    return ResNet(BasicBlock, [18, 18, 18])


def resnet1202():
    return ResNet(BasicBlock, [200, 200, 200])


def build():
    """What gradlint analyses: resnet110 (1.73M parameters), unchanged."""
    return resnet110()


def small():
    """Same architecture and init with one block per stage (ResNet-8)."""
    return ResNet(BasicBlock, [1, 1, 1])


if __name__ == "__main__":
    for name in __all__[1:]:
        net = globals()[name]()
        print(name, sum(p.numel() for p in net.parameters() if p.requires_grad))
