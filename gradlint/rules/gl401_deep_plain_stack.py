"""GL401 deep-plain-stack: many depth-bearing layers in a row without a residual connection."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule, at_least, pathology, plain_runs, span


class DeepPlainStack(Rule):
    """What it does:
    Flags a long run of depth-bearing layers on the spine with no residual connection.

    Why is this bad?
    Depth without skip connections is where exploding gradients and collapsing domains come from:
    their effects compound layer by layer. A residual connection dilutes each block
    (GSC_block^2 = (k^2 + GSC_branch^2)/(k^2 + 1)), so a ResNet's effective depth grows gently.

    Defaults: 20 layers. `warning` when the model also explodes or collapses (a GL1xx or GL2xx finding
    at warning or above), else `info`. VGG-16 and VGG-19 have 16 and 19 depth-bearing layers and train
    with BN (torchvision's vgg19_bn: no finding); the paper's 50-layer MLPs fail; He et al.'s plain
    34-layer BN net trains worse than the 18-layer one, and a plain 30-layer BN-ReLU conv stack is a
    warning here through its explosion (GL101).

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
    triggers = (ex.batch_relu_mlp, at_least(ex.plain_bn_relu_cnn, "warning"))
    clean = (ex.residual_mlp, ex.shallow_mlp, ex.vgg19_bn_like)
    after_others = True

    def check_after(self, report: ModelReport, earlier):
        runs = [r for r in plain_runs(report) if len(r) >= self.opts["length"]]
        if not runs:
            return
        run = max(runs, key=len)
        severity = "warning" if pathology(earlier) else "info"
        yield self.finding(
            report, layer=run[0], severity=severity, value=float(len(run)), threshold=float(self.opts["length"]),
            message=f"{len(run)} depth-bearing layers in a row without a residual connection ({span(run)})",
            recommendation=f"Add residual connections around layers {span(run)} (x = x + f(x) every one or two "
                           "layers), or use fewer, wider layers.",
        )
