"""The paper's exploding network: 50 layers of Linear -> BatchNorm -> ReLU, width 100, He init.

Batch normalisation keeps every forward statistic perfect, and the gradient still explodes:
the Gradient Scale Coefficient grows about 1.2x per layer.
"""

import torch.nn as nn


def deep_mlp(depth: int = 50, width: int = 100, classes: int = 10) -> nn.Module:
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.BatchNorm1d(width), nn.ReLU()]
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)
