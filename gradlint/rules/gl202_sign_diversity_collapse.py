"""GL202 sign-diversity-collapse: ReLU units see one sign on almost every sample (pseudo-linear)."""

from __future__ import annotations

from ..report import Layer, ModelReport
from . import examples as ex
from .base import collapsed, fmt
from .collapsing import CollapseRule, below, count_text


class SignDiversityCollapse(CollapseRule):
    """What it does:
    Flags ReLU-family nonlinearities whose units see pre-activations of one sign on almost every
    sample: sign diversity min(P, N) / (P + N), averaged over units, near 0.

    Why is this bad?
    A ReLU unit that is always positive is the identity, one that is always negative is zero: either
    way the layer is (pseudo-)linear and adds no representational power. Plain ReLU stacks with He
    init keep their scale but lose sign diversity toward the output.

    Defaults: `warning` below 0.1, `error` below 0.005. The noise floor for symmetric pre-activations
    is 0.5 - 1/sqrt(2 pi B): 0.45 at B = 64, so 0.1 is far outside noise; layers with fewer than
    16 samples per unit (`min-samples`) are not judged. Measured: the 50-layer He-init ReLU MLP
    0.007, layer-norm-ReLU 0.015-0.024, default-init ReLU 0.05 (unhealthy); the lowest healthy
    value is 0.13-0.18, the classifier ReLU of a VGG-BN net (non-centred features into a small
    Linear), then 0.31 in a BN ResNet-18 and 0.40 in a residual MLP. Stock nets: torchvision's vgg19
    without BN reaches 0.084 at `features.20` (warning: plain ReLU stacks lose sign diversity with
    depth, and VGG-19 without BN is hard to train from scratch); no other zoo model goes below 0.1.
    Layers whose domain
    collapsed (GL201) are left to that rule, and so is a ReLU whose input has no negative value at
    all (a ReLU of a ReLU output, e.g. after a zero-initialised residual branch): it is the
    identity by construction, not a collapsed domain.

    Example:
    A 40-layer `Linear -> ReLU` MLP with `kaiming_normal_` weights and zero biases.

    How to fix:
    Add residual connections, normalise before the ReLU, or start from the looks-linear orthogonal
    initial state.

    References:
    Philipp et al. (arXiv 1712.05577), Fig. 1C "sign diversity"; Balduzzi et al., "The shattered
    gradients problem" (ICML 2017).
    """

    code = "GL202"
    name = "sign-diversity-collapse"
    severity = "warning"
    summary = "ReLU units see one sign on almost every sample (pseudo-linear)"
    options = {"warning": 0.1, "error": 0.005, "min-samples": 16}
    what_if = ('looks-linear',)
    triggers = (ex.he_relu_mlp,)
    clean = (ex.batch_relu_mlp, ex.looks_linear_mlp, ex.residual_mlp)

    def judge(self, report: ModelReport, layers: list[Layer]):
        layers = [x for x in layers if x.family == "relu" and x.sign_diversity is not None
                  and (x.samples or 0) >= self.opts["min-samples"] and not collapsed(x, self.collapse_level())
                  and not x.rectified]
        hit = below(self, layers, "sign_diversity")
        if hit is None:
            return
        bad, worst, severity, threshold = hit
        yield self.finding(
            report, layer=worst, severity=severity, value=worst.sign_diversity, threshold=threshold,
            error=worst.sign_diversity_error,
            message=f"sign diversity is {fmt(worst.sign_diversity)} at {worst.name} (healthy: ~0.5); "
                    f"{count_text(bad, len(layers))} with an uncollapsed domain are below {self.opts['warning']:g}, "
                    f"from {bad[0].name} on",
            recommendation="Add residual connections around these layers, or normalise before the ReLU; for a "
                           "plain ReLU net, a looks-linear orthogonal initial state keeps sign diversity at 0.5.",
        )
