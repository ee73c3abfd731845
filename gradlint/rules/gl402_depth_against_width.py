"""GL402 depth-against-width: a plain fully connected stack that is deep for its width (sum of 1/width large)."""

from __future__ import annotations

from ..report import Layer, ModelReport
from . import examples as ex
from .base import Rule, grade, plain_runs, span
from .examples import mlp, randn


def narrow_deep_mlp():
    """24 Linear -> LayerNorm -> ReLU layers of width 16: sum of 1/width = 1.5."""
    return mlp(24, 16, norm="layer"), (randn(64, 16),)


def wide_shallow_mlp():
    """6 Linear -> LayerNorm -> ReLU layers of width 256: sum of 1/width = 0.02."""
    return mlp(6, 256, norm="layer"), (randn(64, 256),)


def hanin_beta(report: ModelReport) -> tuple[float, list[Layer], list[Layer]] | None:
    """The largest sum of 1/width over the hidden Linear layers of one plain run, with the run and those layers."""
    best = None
    for run in plain_runs(report):
        hidden = [x for x in run[:-1] if x.op == "Linear" and x.width]
        beta = sum(1.0 / x.width for x in hidden)
        if hidden and (best is None or beta > best[0]):
            best = (beta, run, hidden)
    return best


class DepthAgainstWidth(Rule):
    """What it does:
    Computes Hanin's beta, the sum of 1/width over the hidden fully connected layers of each plain
    run on the spine (consecutive `Linear` layers with no residual connection; the run's last layer
    is its output and does not count), and flags runs where it is large: a stack that is deep for
    its width.

    Why is this bad?
    For a randomly initialised fully connected ReLU network, the variance of the squared entries of
    the input-output Jacobian grows exponentially in beta: when beta is large, gradients at
    initialisation vary wildly from input to input, whatever the init's scale. A trainable net
    needs hidden layers about as wide as it is deep (beta well under 1). The GSC measures the
    average gradient scale; beta predicts its input-to-input fluctuation, which one probe batch
    does not show.

    Defaults: `info` at beta >= 0.5 (the paper's 50-layer width-100 MLPs), `warning` at beta >= 1
    (deeper than wide). Convolutional layers are not counted: the theory is for fully connected
    nets, and positions pool statistics.

    Example:
    24 `Linear(16, 16)` layers: beta = 23/16 = 1.44.

    How to fix:
    Widen the layers or remove some: beta = depth / width for a constant-width stack. Residual
    connections also help, since each block then adds only a diluted share of its fluctuation.

    References:
    Hanin, "Which Neural Net Architectures Give Rise to Exploding and Vanishing Gradients?"
    (NeurIPS 2018); Philipp et al. (arXiv 1712.05577), "widen instead of deepen".
    """

    code = "GL402"
    name = "depth-against-width"
    severity = "warning"
    summary = "a plain fully connected stack that is deep for its width (sum of 1/width large)"
    options = {"info": 0.5, "warning": 1.0}
    triggers = (narrow_deep_mlp,)
    clean = (wide_shallow_mlp, ex.residual_mlp)

    def check(self, report: ModelReport):
        best = hanin_beta(report)
        hit = grade(best[0], [("warning", self.opts["warning"]), ("info", self.opts["info"])]) if best else None
        if hit is None:
            return
        beta, run, hidden = best
        severity, threshold = hit
        widths = sorted({x.width for x in hidden})
        width = f"width {widths[0]}" if len(widths) == 1 else f"widths {widths[0]}-{widths[-1]}"
        yield self.finding(
            report, layer=hidden[0], severity=severity, value=beta, threshold=threshold,
            message=f"{len(hidden)} hidden fully connected layers of {width} in a row ({span(run)}): "
                    f"sum of 1/width = {beta:.2f}; gradients at initialisation fluctuate like exp(beta) "
                    "from input to input",
            recommendation=f"Widen these layers or use fewer of them (beta = depth/width; keep it under "
                           f"{self.opts['info']:g}), or add residual connections around {span(run)}.",
        )
