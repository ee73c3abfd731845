"""GL003 zero-output-anchor: the output is zero; GSC is relative to the nearest non-zero spine point."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule
from .examples import randn, seeded_torch


def zero_head_model():
    """A zero-initialised classifier head (common in vision transformers): the output is exactly zero."""
    torch, nn = seeded_torch()
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    nn.init.zeros_(model[4].weight)
    nn.init.zeros_(model[4].bias)
    return model, (randn(32, 16),)


class ZeroOutputAnchor(Rule):
    """What it does:
    Reports that the model's output is exactly zero on the probe batch (typically a zero-initialised
    head), so the GSC is measured relative to the spine point nearest the output whose value is not
    zero.

    Why is this bad?
    It is not a defect: zero-initialised heads are common (vision transformers). It says what the GSC
    figures are relative to.

    Example:
    `nn.init.zeros_(model.head.weight)` with a zero bias.

    How to fix:
    Nothing to fix; read the GSC profile as relative to the anchor named in the message.

    References:
    gradlint metrics spec, "Gradient Scale Coefficient".
    """

    code = "GL003"
    name = "zero-output-anchor"
    severity = "info"
    summary = "the output is zero; GSC is relative to the nearest non-zero spine point"
    triggers = (zero_head_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        if report.output_zero:
            anchor = report.summary.gsc_anchor
            yield self.finding(
                report, layer=report.layer(anchor) if anchor else None,
                message=f"the model's output is all zeros (zero-initialised head?); GSC is measured relative to "
                        f"{anchor}, the spine point nearest the output with a non-zero value",
                recommendation="None needed; GSC figures are relative to the anchor.",
            )
