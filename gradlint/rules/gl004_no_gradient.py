"""GL004 no-gradient: no gradient reaches any recorded node; GSC not measured."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule
from .examples import seeded_torch


def parameter_free_token_model():
    """One-hot features of token ids with no parameter on the path: nothing can carry a gradient."""
    torch, nn = seeded_torch()

    class OneHot(nn.Module):
        def forward(self, tokens):
            return torch.nn.functional.one_hot(tokens, 16).float().mean(1)

    return OneHot(), (torch.randint(0, 16, (32, 8), generator=torch.Generator().manual_seed(1)),)


class NoGradient(Rule):
    """What it does:
    Reports that nothing upstream of the output requires a gradient, so no GSC could be measured.

    Why is this bad?
    The gradient-scale rules (GL1xx) could not run: the report is missing its main figure.

    Example:
    A model with no parameter between its token-id inputs and its output (one-hot features
    averaged). Frozen parameters alone do not cause it: the probe measures gradients with respect to
    activations, not parameters.

    How to fix:
    Probe the model with its parameters trainable, or give float example inputs.

    References:
    gradlint metrics spec, "Probe".
    """

    code = "GL004"
    name = "no-gradient"
    severity = "warning"
    summary = "no gradient reaches any recorded node; GSC not measured"
    triggers = (parameter_free_token_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        if report.no_gradient:
            yield self.finding(
                report,
                message="no recorded node has a gradient path to the output (integer inputs and no parameter on "
                    "the path?); gradient-scale figures are missing",
                recommendation="Give float example inputs (example_inputs or --input-shape), or check that the "
                               "output depends on a parameter or a float input.",
            )
