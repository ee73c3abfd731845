"""Model builders shared by the tests: the paper's MLPs and small healthy references."""

import torch
import torch.nn as nn


def mlp(depth: int, width: int, act=nn.ReLU, norm: str | None = None, init: str | None = None,
        classes: int = 10) -> nn.Sequential:
    """``depth`` blocks of Linear -> [norm] -> act, then a linear head.  init: None (PyTorch default), he, lecun."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        if init == "he":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        elif init == "lecun":
            nn.init.normal_(linear.weight, std=width ** -0.5)
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "layer":
            layers.append(nn.LayerNorm(width))
        layers.append(act())
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


class ResidualMLP(nn.Module):
    def __init__(self, width: int = 100, blocks: int = 25, scale: float = 0.2):
        super().__init__()
        self.stem = nn.Linear(width, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
            for _ in range(blocks))
        self.scale = scale
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = x + self.scale * block(x)
        return self.head(x)


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def gaussian(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
