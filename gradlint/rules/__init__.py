"""The rule registry: every rule class, in code order.  ``check`` runs them over a report."""

from __future__ import annotations

from ..report import SEVERITY_RANK, Finding, ModelReport
from .analysis import NoGradient, NonFiniteProbe, TraceFallback, ZeroOutputAnchor
from .architecture import DeepPlainStack
from .base import Rule
from .collapse import DeadUnits, DomainCollapse, PseudoLinear, SaturatedUnits, SignDiversityCollapse
from .gradient import ExplodingGradients, VanishingGradients
from .orthogonality import NonOrthogonalInit

RULES: tuple[type[Rule], ...] = (
    TraceFallback,
    NonFiniteProbe,
    ZeroOutputAnchor,
    NoGradient,
    ExplodingGradients,
    VanishingGradients,
    DomainCollapse,
    SignDiversityCollapse,
    PseudoLinear,
    DeadUnits,
    SaturatedUnits,
    NonOrthogonalInit,
    DeepPlainStack,
)


def check(report: ModelReport, rules: tuple[type[Rule], ...] = RULES) -> tuple[Finding, ...]:
    """All findings for a report, most severe first, then by code."""
    findings = [f for rule in rules for f in rule().check(report)]
    return tuple(sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code)))


__all__ = ["RULES", "Rule", "check"]
