"""A 20-layer tanh MLP with PyTorch's default nn.Linear init.

The default init (weight variance 1/(3 fan_in), uniform biases) shrinks the signal every layer
until the biases dominate: every input reaches the top layers as nearly the same pre-activation.
"""

import torch.nn as nn


class TanhMLP(nn.Module):
    def __init__(self, depth: int = 20, width: int = 100, classes: int = 10):
        super().__init__()
        blocks = []
        for _ in range(depth):
            blocks += [nn.Linear(width, width), nn.Tanh()]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.body(x))
