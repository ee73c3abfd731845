"""GL205 saturated-units: tanh/sigmoid units saturated on almost every sample."""

from __future__ import annotations

from ..report import Layer, ModelReport
from . import examples as ex
from .base import fmt
from .collapsing import CollapseRule, above
from .examples import mlp


def saturated_tanh_layer():
    """Linear -> tanh on unnormalised pixel values in [0, 255]: every unit sits on a flat part of tanh."""
    import torch

    model = mlp(2, 64, act="tanh", init="lecun")
    return model, (255 * torch.rand(64, 64, generator=torch.Generator().manual_seed(1)),)


class SaturatedUnits(CollapseRule):
    """What it does:
    Flags tanh, sigmoid and hardtanh layers where many units are saturated (flat part of the
    function) on more than 99% of samples.

    Why is this bad?
    A saturated unit passes almost no gradient and outputs a near-constant.

    Defaults: `warning` when more than 10% of a layer's units are saturated.

    Example:
    `nn.Tanh()` after a `Linear` with weight std 3/sqrt(fan_in).

    How to fix:
    Scale the weights down (xavier_normal_ or orthogonal_ with gain 1), or normalise before the
    nonlinearity.

    References:
    Glorot & Bengio (2010); Philipp et al. (arXiv 1712.05577).
    """

    code = "GL205"
    name = "saturated-units"
    severity = "warning"
    summary = "tanh/sigmoid units saturated on almost every sample"
    options = {"warning": 0.1}
    what_if = ('orthogonal',)
    triggers = (saturated_tanh_layer,)
    clean = (ex.lecun_tanh_mlp, ex.layer_norm_tanh_mlp)

    def judge(self, report: ModelReport, layers: list[Layer]):
        hit = above(layers, "saturated_fraction", self.opts["warning"])
        if hit is None:
            return
        bad, worst = hit
        yield self.finding(
            report, layer=worst, value=worst.saturated_fraction, threshold=self.opts["warning"],
            message=f"{worst.saturated_fraction:.0%} of the units of {worst.name} ({worst.op}) are saturated on "
                    f">99% of samples (pre-activation std {fmt(worst.preact_std)}; {len(bad)} layers affected)",
            recommendation="Scale the incoming weights down (xavier_normal_ or orthogonal_ with gain 1) or "
                           "normalise before the nonlinearity.",
        )
