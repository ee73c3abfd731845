"""A healthy deep network: 24 pre-norm residual blocks whose branches are scaled by 0.2.

The skip dominates each block (k-dilution), so the gradient scale stays near 1 at every depth.
"""

import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width: int, scale: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, width)
        self.scale = scale

    def forward(self, x):
        return x + self.scale * self.fc2(self.act(self.fc1(self.norm(x))))


class ResidualMLP(nn.Module):
    def __init__(self, width: int = 100, blocks: int = 24, scale: float = 0.2, classes: int = 10):
        super().__init__()
        self.stem = nn.Linear(width, width)
        self.blocks = nn.Sequential(*[Block(width, scale) for _ in range(blocks)])
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def example_inputs():
    import torch

    return (torch.randn(64, 100, generator=torch.Generator().manual_seed(0)),)
