"""GL4xx: architecture: depth without residual connections."""

from __future__ import annotations

from ..report import Layer, ModelReport
from .base import Rule, span
from .orthogonality import shows_pathology


def plain_runs(report: ModelReport) -> list[list[Layer]]:
    """Runs of consecutive depth-bearing spine layers with no residual merge between them."""
    merges = {b.merge for b in report.residual_blocks}
    runs: list[list[Layer]] = [[]]
    for x in report.layers:
        if not x.spine:
            continue
        if x.name in merges:
            runs.append([])
        elif x.kind == "layer":
            runs[-1].append(x)
    return [r for r in runs if r]


class DeepPlainStack(Rule):
    """What it does:
    Flags a long run of depth-bearing layers on the spine with no residual connection.

    Why is this bad?
    Depth without skip connections is where exploding gradients and collapsing domains come from:
    their effects compound layer by layer. A residual connection dilutes each block
    (GSC_block^2 = (k^2 + GSC_branch^2)/(k^2 + 1)), so a ResNet's effective depth grows gently.

    Defaults: 20 layers. `warning` when the model also explodes or collapses, else `info`.
    (VGG-16 has 16 depth-bearing layers and trains with BN; the paper's 50-layer MLPs fail.)

    Example:
    `nn.Sequential` of 50 `Linear -> BatchNorm1d -> ReLU` blocks.

    How to fix:
    Add skip connections around the layers named in the message (`x = x + f(x)` every one or two
    layers), or trade depth for width.

    References:
    Philipp et al. (arXiv 1712.05577), "ResNet explained"; He et al., "Deep residual learning" (2016).
    """

    code = "GL401"
    name = "deep-plain-stack"
    severity = "warning"
    summary = "many depth-bearing layers in a row without a residual connection"
    options = {"length": 20}
    what_if = ('looks-linear',)

    def check(self, report: ModelReport):
        runs = [r for r in plain_runs(report) if len(r) >= self.opts["length"]]
        if not runs:
            return
        run = max(runs, key=len)
        severity = "warning" if shows_pathology(report) else "info"
        yield self.finding(
            report, layer=run[0], severity=severity, value=float(len(run)), threshold=float(self.opts["length"]),
            message=f"{len(run)} depth-bearing layers in a row without a residual connection ({span(run)})",
            recommendation=f"Add residual connections around layers {span(run)} (x = x + f(x) every one or two "
                           "layers), or use fewer, wider layers.",
        )
