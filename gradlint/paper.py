"""The paper's architectures (Philipp, Song & Carbonell, section 5) as model builders.

Plain MLPs of ``depth`` blocks ``Linear -> [norm] -> activation`` at constant width, then a linear head,
and ResNets of blocks ``x + alpha * W2 phi(N(W1 x))``.  Inits are explicit and variance-preserving:
Gaussian weights with variance 2/fan_in for ReLU, 1/fan_in for tanh, SeLU and linear (LeCun), zero
biases.  ``benchmarks/paper_table.py`` and the tests measure these; the same builders are public so a
user can compare their own model against them.
"""

from __future__ import annotations

import torch.nn as nn

# name -> (activation, normalisation)
PLAIN = {
    "relu": (nn.ReLU, None),
    "tanh": (nn.Tanh, None),
    "selu": (nn.SELU, None),
    "linear": (nn.Identity, None),
    "layer-relu": (nn.ReLU, "layer"),
    "layer-tanh": (nn.Tanh, "layer"),
    "batch-relu": (nn.ReLU, "batch"),
    "batch-tanh": (nn.Tanh, "batch"),
}


def _linear(fan_in: int, fan_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(fan_in, fan_out)
    nn.init.normal_(layer.weight, std=gain / fan_in ** 0.5)
    nn.init.zeros_(layer.bias)
    return layer


def _gain(act: type[nn.Module]) -> float:
    return 2 ** 0.5 if act is nn.ReLU else 1.0


def _norm(kind: str | None, width: int) -> list[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm1d(width)]
    if kind == "layer":
        return [nn.LayerNorm(width)]
    return []


def mlp(name: str, depth: int = 50, width: int = 100, classes: int = 10) -> nn.Sequential:
    """A plain MLP from ``PLAIN`` (e.g. "batch-relu"): ``depth`` hidden blocks, then a linear head."""
    if name not in PLAIN:
        raise ValueError(f"unknown paper MLP {name!r}; choose from {', '.join(PLAIN)}")
    act, norm = PLAIN[name]
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [_linear(width, width, _gain(act)), *_norm(norm, width), act()]
    layers.append(_linear(width, classes, 1.0))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """``x + alpha * W2 phi(N(W1 x))``: the skip is the identity, the branch is scaled by ``alpha``."""

    def __init__(self, width: int, alpha: float, act: type[nn.Module] = nn.ReLU, norm: str | None = "batch"):
        super().__init__()
        self.branch = nn.Sequential(_linear(width, width, _gain(act)), *_norm(norm, width), act(),
                                    _linear(width, width, 1.0))
        self.alpha = alpha

    def forward(self, x):
        return x + self.alpha * self.branch(x)


class ResNet(nn.Module):
    def __init__(self, alpha: float, blocks: int = 50, width: int = 100, classes: int = 10,
                 act: type[nn.Module] = nn.ReLU, norm: str | None = "batch"):
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualBlock(width, alpha, act, norm) for _ in range(blocks)))
        self.head = _linear(width, classes, 1.0)

    def forward(self, x):
        return self.head(self.blocks(x))


class ResidualMLP(nn.Module):
    """The healthy reference beside the paper's nets: ``x + scale * W2 ReLU(W1 LN(x))`` blocks between a
    linear stem and head, PyTorch's default init."""

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


def resnet(alpha: float, blocks: int = 50, width: int = 100, classes: int = 10) -> ResNet:
    """The paper's batch-ReLU ResNet with the residual branch scaled by ``alpha`` (sets the dilution)."""
    return ResNet(alpha, blocks, width, classes)
