"""The rule registry: every rule class, in code order.  ``check`` runs them over a report."""

from __future__ import annotations

from collections.abc import Sequence

from ..report import SEVERITY_RANK, Finding, ModelReport
from .analysis import NoGradient, NonFiniteProbe, TraceFallback, UnmeasuredParameters, ZeroOutputAnchor
from .architecture import BiasBeforeNorm, DeepPlainStack, DepthAgainstWidth, DominantResidualBranch
from .base import Rule
from .collapse import DeadUnits, DomainCollapse, PseudoLinear, SaturatedUnits, SignDiversityCollapse
from .gradient import ExplodingGradients, VanishingGradients
from .orthogonality import IdenticalInitialWeights, NonOrthogonalInit

RULES: tuple[type[Rule], ...] = (
    TraceFallback,
    NonFiniteProbe,
    ZeroOutputAnchor,
    NoGradient,
    UnmeasuredParameters,
    ExplodingGradients,
    VanishingGradients,
    DomainCollapse,
    SignDiversityCollapse,
    PseudoLinear,
    DeadUnits,
    SaturatedUnits,
    NonOrthogonalInit,
    IdenticalInitialWeights,
    DeepPlainStack,
    DepthAgainstWidth,
    DominantResidualBranch,
    BiasBeforeNorm,
)


def registry() -> tuple[type[Rule], ...]:
    """Every known rule class: gradlint's own, then third-party ones (entry points ``gradlint.rules``)."""
    from .plugins import plugin_rules

    return RULES + plugin_rules(RULES)


def default_rules() -> list[Rule]:
    """An instance of every rule that is on by default (all but experimental GL9xx), default options."""
    return [cls() for cls in registry() if cls.enabled_by_default()]


def check(report: ModelReport, rules: Sequence[Rule] | None = None) -> tuple[Finding, ...]:
    """All findings of ``rules`` (default: ``default_rules()``) for a report, most severe first, then by code."""
    rules = default_rules() if rules is None else rules
    findings = [f for rule in rules for f in rule.check(report)]
    return tuple(sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code)))


__all__ = ["RULES", "Rule", "check", "default_rules", "registry"]
