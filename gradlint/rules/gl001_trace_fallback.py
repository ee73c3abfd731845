"""GL001 trace-fallback: neither torch.fx nor torch.export could capture the model; module hooks recorded it as a chain."""

from __future__ import annotations

from ..report import ModelReport
from ..vocabulary import HOOKS
from . import examples as ex
from .base import Rule
from .examples import randn, seeded_torch


def untraceable_model():
    """Data-dependent control flow in forward: torch.fx cannot trace it."""
    torch, nn = seeded_torch()

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(16, 16)
            self.b = nn.Linear(16, 4)

        def forward(self, x):
            h = torch.relu(self.a(x))
            if h.sum() > 0:
                h = h * 2
            return self.b(h)

    return Branchy(), (randn(32, 16),)


class TraceFallback(Rule):
    """What it does:
    Reports that neither torch.fx nor torch.export could capture the model's graph, so gradlint
    recorded its modules with forward hooks, and why each graph tier failed.

    Why is this bad?
    gradlint captures the graph in tiers. torch.fx traces through every module that is not a
    primitive layer and sees everything. When it fails (shape-dependent branches, most Hugging Face
    models), `torch.export` records the same graph at the level of ATen ops, with module paths: the
    analysis is as complete, so that is no finding (the report's header names the tier). When export
    fails too (data-dependent control flow), forward hooks record the leaf modules in the order they
    ran and gradlint treats them as a chain: residual structure is not seen, functional operations
    between modules are not measured (GL005 counts what that hides), and the GSC profile is read at
    the input only.

    Example:
    A forward with data-dependent control flow (`if x.sum() > 0:`) can be captured by neither
    torch.fx nor torch.export.

    How to fix:
    Make the forward capturable by torch.export (move data-dependent branches out of it) for the full
    graph analysis. The message gives each tier's error.

    References:
    torch.fx documentation, "Limitations of Symbolic Tracing"; torch.export documentation,
    "Non-strict export".
    """

    code = "GL001"
    name = "trace-fallback"
    severity = "info"
    summary = "neither torch.fx nor torch.export could capture the model; module hooks recorded it as a chain"
    triggers = (untraceable_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        if report.trace == HOOKS:
            why = report.trace_note or "torch.fx and torch.export could not capture the model"
            yield self.finding(
                report,
                message=f"{why}; recorded modules with forward hooks and treated them as a chain: residual "
                        "structure is not seen, functional operations are not measured, and the GSC profile "
                        "is read at the input only",
                recommendation="Make forward() capturable by torch.export (no data-dependent control flow) for "
                               "the full graph analysis.",
            )
