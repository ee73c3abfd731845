"""GL005 unmeasured-parameters: trainable parameters the probe did not measure (parameter coverage below 1)."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule
from .examples import randn, seeded_torch


def opaque_function_model():
    """A custom autograd.Function holding most of the weights: the probe cannot see inside it."""
    torch, nn = seeded_torch()

    class ScaledMatmul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x @ w.t()

        @staticmethod
        def backward(ctx, grad):
            x, w = ctx.saved_tensors
            return grad @ w, grad.t() @ x

    class Opaque(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(16, 64)
            self.weight = nn.Parameter(torch.randn(64, 64) / 8)
            self.head = nn.Linear(64, 4)

        def forward(self, x):
            return self.head(torch.relu(ScaledMatmul.apply(self.inp(x), self.weight)))

    return Opaque(), (randn(32, 16),)


class UnmeasuredParameters(Rule):
    """What it does:
    Reports trainable parameters the probe did not measure: parameter coverage, the fraction of
    trainable parameter elements read by an operation the graph capture recognised (depth-bearing
    layers, norms, embeddings, any known torch op on a parameter), is below 1. Names the largest
    modules whose parameters were not seen, and why each was not.

    Why is this bad?
    Every figure in the report comes from what the probe saw. A custom `autograd.Function`, an
    extension op, parameters used outside the recorded modules when gradlint fell back to hooks,
    or parameters the forward never uses are blind spots: the model may explode or collapse there
    and the report would not show it. A run that measured little of the model is not a pass: below
    half the parameters it is an error, whatever the other rules found.

    Defaults: `info` below full coverage (`info`, 1.0), `warning` below 0.9 (`warning`), `error`
    below 0.5 (`error`). Measured: every torch.nn model in the test suite, the stock zoo and the
    real-world corpus (`benchmarks/realworld.py`) have coverage 1.0, but for an SN-GAN discriminator
    whose own spectral-norm wrapper calls `self.module.forward(x)` directly (torch.fx and
    torch.export fail on its `.data` updates, and the hooks see no module call): 0.

    Example:
    A layer computed by `MyMatmul.apply(x, self.weight)` (a custom autograd.Function holding most of
    the weights), or a wrapper module that recomputes its child's weight and calls the child's
    `forward` directly.

    How to fix:
    Express the operation with torch ops so the capture can see it (or wrap only the part that needs
    a custom backward), use torch's own `torch.nn.utils.parametrizations` (spectral_norm, weight_norm,
    orthogonal), which gradlint measures with the weight the forward uses, make forward() traceable
    so that gradlint does not fall back to hooks, or remove parameters the forward does not use.

    References:
    gradlint metrics spec, "Coverage".
    """

    code = "GL005"
    name = "unmeasured-parameters"
    severity = "error"
    summary = "trainable parameters the probe did not measure (parameter coverage below 1)"
    options = {"info": 1.0, "warning": 0.9, "error": 0.5}
    triggers = (opaque_function_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        coverage = report.summary.parameter_coverage
        if coverage is None or coverage >= self.opts["info"]:
            return
        severity = ("error" if coverage < self.opts["error"] else "warning" if coverage < self.opts["warning"]
                    else "info")
        threshold = self.opts[severity]
        reasons: dict[str, list[str]] = {}
        for name, count, why in report.unmeasured[:4]:
            reasons.setdefault(why, []).append(f"{name} ({count:,})")
        names = "; ".join(f"{', '.join(mods)}: {why}" for why, mods in reasons.items())
        more = f"; and {len(report.unmeasured) - 4} more modules" if len(report.unmeasured) > 4 else ""
        verdict = ("most of the model was not analysed, so this report is no pass" if severity == "error"
                   else "the report says nothing about these parts of the model")
        yield self.finding(
            report, severity=severity, value=coverage, threshold=threshold,
            message=f"the probe measured {coverage:.1%} of the trainable parameter elements; not seen: {names}{more}; "
                    f"{verdict}",
            recommendation="Let the capture see these parameters: use torch ops instead of a custom autograd.Function "
                           "or extension op where you can, torch.nn.utils.parametrizations instead of a hand-written "
                           "weight wrapper, make forward() traceable (the header says why it was not), or remove "
                           "parameters the forward does not use.",
        )
