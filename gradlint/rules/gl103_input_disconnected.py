"""GL103 input-disconnected: the output does not depend on the input (no gradient reaches it)."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule, cut, disconnected, spine_points
from .examples import randn, seeded_torch


def zero_edge_model():
    """A ReLU MLP whose middle is multiplied by zero (NAS-Bench-201's 'none' op as the only edge): the
    output is the head's bias, the same for every sample."""
    torch, nn = seeded_torch()

    class Zero(nn.Module):
        def forward(self, x):
            return x.mul(0.0)

    model = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), Zero(),
                          nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    return model, (randn(32, 32),)


class InputDisconnected(Rule):
    """What it does:
    Flags a model whose output does not depend on its input: the gradient at the data input is exactly
    zero, and the output is the same for every sample of the probe batch.

    Why is this bad?
    Nothing the network sees reaches its output, so it cannot learn from its input at all: training
    can only fit the label frequencies. In NAS-Bench-201 the 341 of 15,625 cells with no path from the
    cell's input to its output (every path passes a 'none' edge) are exactly the ones that train to
    chance (10% on CIFAR-10). When the gradient is zero but the output still differs between samples,
    the path passes operations without a gradient (rounding, argmax); that is reported at `info`.

    Example:
    A ReLU MLP with a module in the middle that returns `x.mul(0.0)`.

    How to fix:
    Connect the input to the output: find what cuts the data path after the layer the message names
    (a ReLU layer whose units are all dead, GL204; a 'none' edge; a multiplication by zero; a branch
    that is never added).

    References:
    Dong & Yang, "NAS-Bench-201" (ICLR 2020); Abdelfattah et al., "Zero-cost proxies for lightweight
    NAS" (ICLR 2021).
    """

    code = "GL103"
    name = "input-disconnected"
    severity = "error"
    summary = "the output does not depend on the input (no gradient reaches it)"
    triggers = (zero_edge_model,)
    clean = (ex.shallow_mlp, ex.residual_mlp, ex.default_init_relu_mlp)

    def check(self, report: ModelReport):
        at = cut(report)
        if at is None:
            return
        start = max(spine_points(report), key=lambda x: x.depth or 0)
        reach = f"no gradient reaches {start.name}" + ("" if at is start else f" (none from {at.name} back)")
        if disconnected(report):
            yield self.finding(
                report, layer=at, value=0.0,
                message=f"the output does not depend on the input: it is the same for every sample of the probe "
                        f"batch, and {reach}; the network cannot learn from its input",
                recommendation=f"Connect the input to the output: the data path is cut at or after {at.name} "
                               "(a ReLU layer whose units are all dead, a 'none' edge, a multiplication by zero, a "
                               "branch that is never added).",
            )
        else:
            yield self.finding(
                report, layer=at, value=0.0, severity="info",
                message=f"{reach}, though the output differs between samples: the data path passes operations "
                        "without a gradient (rounding, argmax, detach), so the layers before them do not train",
                recommendation="If the layers before the cut should train, use a differentiable operation there "
                               "(a straight-through estimator for rounding, softmax for argmax).",
            )
