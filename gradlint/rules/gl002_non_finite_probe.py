"""GL002 non-finite-probe: NaN or Inf in the probe's activations or gradients."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule
from .examples import randn, seeded_torch


def nonfinite_model():
    """A forward that takes the log of a ReLU output: -inf wherever the ReLU is zero."""
    torch, nn = seeded_torch()

    class LogReLU(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            return self.head(torch.log(torch.relu(self.fc(x))))

    return LogReLU(), (randn(32, 16),)


class NonFiniteProbe(Rule):
    """What it does:
    Reports NaN or Inf values in the probe's forward activations or backward gradients.

    Why is this bad?
    A model that produces non-finite values on a standard Gaussian batch at initialisation cannot be
    trained as it is, and every statistic downstream of the first bad node is meaningless.

    Example:
    A `torch.log` of a ReLU output, or a weight initialised with `inf`.

    How to fix:
    Look at the first node named in the message and what feeds it.

    References:
    Philipp et al., "Gradients explode - Deep Networks are shallow - ResNet explained", section 2.
    """

    code = "GL002"
    name = "non-finite-probe"
    severity = "error"
    summary = "NaN or Inf in the probe's activations or gradients"
    triggers = (nonfinite_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        if report.nonfinite:
            first = report.layer(report.nonfinite[0])
            more = f" (and {len(report.nonfinite) - 1} later nodes)" if len(report.nonfinite) > 1 else ""
            yield self.finding(
                report, layer=first,
                message=f"non-finite values (NaN or Inf) first at {report.nonfinite[0]}{more}; the statistics "
                        "downstream of it are not reported",
                recommendation=f"Check the operation at {report.nonfinite[0]} and its inputs at initialisation.",
                value=float(len(report.nonfinite)),
            )
