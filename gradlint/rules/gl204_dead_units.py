"""GL204 dead-units: ReLU units that are never positive on the probe batch."""

from __future__ import annotations

from ..report import Layer, ModelReport
from . import examples as ex
from .base import collapsed
from .collapsing import CollapseRule, above
from .examples import mlp, randn


def dead_relu_layer():
    """Linear -> ReLU with biases of -3: most units are never positive."""
    return mlp(2, 64, bias=-3.0), (randn(64, 64),)


class DeadUnits(CollapseRule):
    """What it does:
    Flags ReLU-family layers where many units are never positive on the probe batch.

    Why is this bad?
    A unit that is never positive passes no gradient: its weights never train. Sparsity of elements
    (half the entries zero) is normal; a unit that is zero for every sample is not.

    Defaults: `warning` when more than 25% (`warning` = 0.25) of a layer's units are never positive.
    Element sparsity is not death: a unit that is positive on 5% of samples looks dead on 8
    samples two times in three, so layers with fewer than 16 samples per unit (`min-samples`) are
    not judged. Measured: unhealthy plain ReLU nets 0.41-0.50; the worst healthy layer is a VGG-BN
    classifier ReLU, 0.15 at 64 samples (0.19-0.27 at 8). Layers whose domain collapsed (GL201),
    and ReLUs whose input is already non-negative, are left out.

    Example:
    A ReLU after a Linear whose biases are strongly negative.

    How to fix:
    Zero the biases at init, normalise before the ReLU, or use LeakyReLU.

    References:
    Lu et al., "Dying ReLU and initialization" (2019).
    """

    code = "GL204"
    name = "dead-units"
    severity = "warning"
    summary = "ReLU units that are never positive on the probe batch"
    options = {"warning": 0.25, "min-samples": 16}
    what_if = ('looks-linear',)
    triggers = (dead_relu_layer,)
    clean = (ex.shallow_mlp, ex.residual_mlp, ex.batch_relu_mlp)

    def judge(self, report: ModelReport, layers: list[Layer]):
        hit = above([x for x in layers if (x.samples or 0) >= self.opts["min-samples"]
                     and not collapsed(x, self.collapse_level()) and not x.rectified],
                    "dead_fraction", self.opts["warning"])
        if hit is None:
            return
        bad, worst = hit
        yield self.finding(
            report, layer=worst, value=worst.dead_fraction, threshold=self.opts["warning"],
            message=f"{worst.dead_fraction:.0%} of the units of {worst.name} are never positive on "
                    f"{worst.samples} samples ({len(bad)} layers above {self.opts['warning']:.0%})",
            recommendation="Zero the biases at init, normalise before the ReLU, or add residual connections.",
        )
