"""GL301 non-orthogonal-initial-state: weights are far from orthogonal in a model that explodes or collapses."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule, depth_layers, fmt, pathology, span
from .examples import batch_relu_mlp


def orthogonal_batch_relu_mlp():
    """The batch-ReLU MLP with orthogonal weights: still explodes (BatchNorm), but its weights are orthogonal."""
    import torch

    from ..init import orthogonal_

    model, x = batch_relu_mlp()
    return orthogonal_(model, generator=torch.Generator().manual_seed(0)), x


class NonOrthogonalInit(Rule):
    """What it does:
    When the model explodes or collapses (see GL1xx, GL2xx), reports that its depth-bearing weights
    are far from orthogonal: the orthogonality defect (coefficient of variation of the squared
    singular values) is large.

    Why is this bad?
    The paper's first recommendation is to train from an orthogonal initial state: a network that
    starts as a composition of orthogonal maps has GSC 1 at every depth and no collapsed domain, so
    depth stops being a liability at the start of training. i.i.d. Gaussian or uniform weights have
    a defect of about 1 when square.

    Defaults: `info`, when the mean defect is above 0.3 and the model also shows a pathology at
    warning level (a GL1xx or GL2xx finding at warning or above). Orthogonal weights alone do not remove the explosion caused by batch norm; the
    message is a pointer, not a diagnosis.

    Example:
    A 30-layer `Linear -> BatchNorm1d -> ReLU` MLP with He (Gaussian) weights: it explodes, and
    every weight has defect ~1.

    How to fix:
    `torch.nn.init.orthogonal_(layer.weight, gain=...)` on each depth-bearing layer; for ReLU nets the
    looks-linear construction `[[A, -A], [-A, A]]` makes the whole network an orthogonal linear map at
    initialisation.

    References:
    Philipp et al. (arXiv 1712.05577), "orthogonal initial state"; Saxe et al. (2014); Balduzzi et al.
    (ICML 2017); Xiao et al. (ICML 2018) for convolutions.
    """

    code = "GL301"
    name = "non-orthogonal-initial-state"
    severity = "info"
    summary = "weights are far from orthogonal in a model that explodes or collapses"
    options = {"info": 0.3}
    what_if = ('looks-linear', 'orthogonal')
    triggers = (ex.batch_relu_mlp,)
    clean = (orthogonal_batch_relu_mlp, ex.residual_mlp)
    after_others = True

    def check_after(self, report: ModelReport, earlier):
        mean = report.summary.mean_orthogonality_defect
        if mean is None or mean <= self.opts["info"] or not pathology(earlier):
            return
        layers = [x for x in depth_layers(report) if x.orthogonality_defect is not None
                  and x.orthogonality_defect > self.opts["info"]]
        worst = max(layers, key=lambda x: x.orthogonality_defect)
        yield self.finding(
            report, layer=worst, value=mean, threshold=self.opts["info"],
            message=f"mean weight orthogonality defect is {fmt(mean)} over {len(depth_layers(report))} layers "
                    f"(worst {fmt(worst.orthogonality_defect)} at {worst.name}; 0 is orthogonal)",
            recommendation=f"Start from an orthogonal initial state: torch.nn.init.orthogonal_(weight) on "
                           f"{span(layers)} (gain to keep each nonlinearity's pre-activation scale); for ReLU "
                           "nets, the looks-linear construction makes the network exactly orthogonal at init.",
        )
