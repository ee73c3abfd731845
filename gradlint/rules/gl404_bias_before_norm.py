"""GL404 bias-before-norm: a bias that the following batch normalisation cancels exactly."""

from __future__ import annotations

from ..report import ModelReport
from .base import Rule, depth_layers
from .examples import mlp, randn, seeded_torch


def conv_bias_before_batchnorm():
    """Conv2d(bias=True) -> BatchNorm2d -> ReLU: BatchNorm subtracts the channel mean, the bias cancels."""
    torch, nn = seeded_torch()
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return model, (randn(8, 3, 16, 16),)


def conv_without_bias_before_batchnorm():
    """Conv2d(bias=False) -> BatchNorm2d -> ReLU, as torchvision builds it."""
    torch, nn = seeded_torch()
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return model, (randn(8, 3, 16, 16),)


def linear_bias_before_layernorm():
    """Linear(bias=True) -> LayerNorm: LayerNorm normalises over features, so a per-feature bias survives."""
    return mlp(3, 32, norm="layer"), (randn(64, 32),)


class BiasBeforeNorm(Rule):
    """What it does:
    Flags layers whose bias feeds straight into a BatchNorm (or an InstanceNorm, or a GroupNorm
    with one channel per group), which subtracts each channel's mean over the batch.

    Why is this bad?
    The norm removes any per-channel constant, so the bias cancels exactly: it is a parameter that
    can never change the output, costs memory and optimiser state, and makes weight decay and
    parameter counts misleading. It does not hurt the gradient scale, hence `info`. A LayerNorm
    normalises over features instead, so a per-feature bias before it is not cancelled and is not
    flagged.

    Defaults: `info` for every such layer.

    Example:
    `nn.Conv2d(64, 64, 3, padding=1)` followed by `nn.BatchNorm2d(64)`.

    How to fix:
    Construct the layer with `bias=False`, as torchvision's ResNets do.

    References:
    Ioffe & Szegedy, "Batch normalization" (ICML 2015), section 3.2: the bias "can be ignored".
    """

    code = "GL404"
    name = "bias-before-norm"
    severity = "info"
    summary = "a bias that the following batch normalisation cancels exactly"
    triggers = (conv_bias_before_batchnorm,)
    clean = (conv_without_bias_before_batchnorm, linear_bias_before_layernorm)

    def check(self, report: ModelReport):
        bad = [x for x in depth_layers(report) if x.bias_cancelled_by]
        if not bad:
            return
        names = ", ".join(f"{x.name} -> {x.bias_cancelled_by}" for x in bad[:4])
        names += f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""
        yield self.finding(
            report, layer=bad[0], value=float(len(bad)),
            message=f"{len(bad)} layer bias{'es' if len(bad) > 1 else ''} cancelled by the batch "
                    f"normalisation right after: {names}",
            recommendation=f"Construct {'these layers' if len(bad) > 1 else bad[0].name} with bias=False.",
        )
