"""GL3xx: initialisation and orthogonality."""

from __future__ import annotations

from ..report import ModelReport
from .base import Rule, depth_layers, fmt, span
from .collapse import DomainCollapse, PseudoLinear, SignDiversityCollapse
from .gradient import ExplodingGradients, VanishingGradients


def shows_pathology(report: ModelReport) -> bool:
    """Explosion, vanishing or collapse at the default warning levels of GL101, GL102 and GL2xx."""
    s = report.summary
    if s.gsc_max is not None and s.gsc_max >= ExplodingGradients.options["warning"]:
        return True
    if s.gsc_input is not None and s.gsc_input < VanishingGradients.options["warning"]:
        return True
    if s.min_relative_spread is not None and s.min_relative_spread < DomainCollapse.options["warning"]:
        return True
    for x in report.layers:
        if x.kind != "nonlinearity":
            continue
        if (x.family == "relu" and x.sign_diversity is not None
                and x.sign_diversity < SignDiversityCollapse.options["warning"]):
            return True
        if x.nonlinearity is not None and x.nonlinearity < PseudoLinear.options["warning"]:
            return True
    return False


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
    warning level. Orthogonal weights alone do not remove the explosion caused by batch norm; the
    message is a pointer, not a diagnosis.

    Example:
    A deep tanh MLP with `nn.Linear`'s default init.

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

    def check(self, report: ModelReport):
        mean = report.summary.mean_orthogonality_defect
        if mean is None or mean <= self.opts["info"] or not shows_pathology(report):
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
