"""GL201 collapsing-domain: pre-activations are nearly identical across inputs (relative spread near 0)."""

from __future__ import annotations

from ..report import Layer, ModelReport
from . import examples as ex
from .base import COLLAPSED_SPREAD, fmt
from .collapsing import CollapseRule, below, count_text


class DomainCollapse(CollapseRule):
    """What it does:
    Flags nonlinearities whose pre-activations are nearly the same for every input: the relative
    spread (mean per-unit std over samples, divided by the RMS of the pre-activation) is near 0.

    Why is this bad?
    If every input reaches a nonlinearity at almost the same point, the layer computes almost the
    same output for every input: the information that distinguishes inputs is lost, and the layers
    above are pseudo-linear on a tiny domain. PyTorch's default `nn.Linear` init shrinks the signal
    each layer until the uniform biases dominate; then every unit sees a constant.

    Defaults: `warning` below 0.1, `error` below 0.01 (default-init 20-layer ReLU and tanh MLPs: < 1e-4;
    He-init ReLU: 0.30; batch-norm nets: 1.0). Stock nets: torchvision's vgg19 without BN reaches 0.077
    at its first classifier ReLU (warning: VGG-19 without BN is hard to train from scratch, which is
    why Simonyan & Zisserman initialised it from a shallower net); every other zoo model stays above
    0.1 once gates are left out. Gates (a nonlinearity on a branch that multiplies another path, such
    as squeeze-excitation) are not judged: their squeeze path pools each image to one vector, which on
    Gaussian probe images is nearly the same for every sample (RegNetY's SE: 0.03).

    Example:
    `nn.Sequential(*[nn.Sequential(nn.Linear(100, 100), nn.ReLU()) for _ in range(20)])` with the
    default init.

    How to fix:
    A variance-preserving init with zero biases, normalisation before the nonlinearity, or residual
    connections.

    References:
    Philipp et al. (arXiv 1712.05577), "collapsing domain problem".
    """

    code = "GL201"
    name = "collapsing-domain"
    severity = "error"
    summary = "pre-activations are nearly identical across inputs (relative spread near 0)"
    options = {"warning": COLLAPSED_SPREAD, "error": 0.01}
    what_if = ('looks-linear', 'orthogonal')
    triggers = (ex.default_init_relu_mlp,)
    clean = (ex.he_relu_mlp, ex.batch_relu_mlp, ex.squeeze_excitation_net)

    def judge(self, report: ModelReport, layers: list[Layer]):
        # a ReLU of a non-negative input (a ReLU after a residual sum of ReLU outputs) is the identity:
        # how much its input varies is the business of the nonlinearities that made it
        layers = [x for x in layers if not x.rectified]
        hit = below(self, layers, "relative_spread")
        if hit is None:
            return
        bad, worst, severity, threshold = hit
        yield self.finding(
            report, layer=worst, severity=severity, value=worst.relative_spread, threshold=threshold,
            error=worst.relative_spread_error,
            message=f"relative spread of the pre-activation is {fmt(worst.relative_spread)} at {worst.name}; "
                    f"{count_text(bad, len(layers))} see a nearly constant input (first at {bad[0].name})",
            recommendation="Use a variance-preserving init with zero biases (e.g. nn.init.kaiming_normal_ / "
                           "xavier_normal_ and nn.init.zeros_ on the bias), normalise before the nonlinearity, "
                           "or add residual connections.",
        )
