"""The rule registry: every rule class, in code order.  ``check`` runs them over a report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..report import SEVERITY_RANK, Finding, ModelReport
from .analysis import NoGradient, NonFiniteProbe, TraceFallback, UnmeasuredParameters, ZeroOutputAnchor
from .architecture import BiasBeforeNorm, DeepPlainStack, DepthAgainstWidth, DominantResidualBranch
from .base import Rule, what_if_hint
from .collapse import DeadUnits, DomainCollapse, PseudoLinear, SaturatedUnits, SignDiversityCollapse
from .gradient import ExplodingGradients, VanishingGradients
from .orthogonality import DominantAddedParameter, IdenticalInitialWeights, NonOrthogonalInit, OverconfidentOutput

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
    OverconfidentOutput,
    DominantAddedParameter,
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


def check(report: ModelReport, rules: Sequence[Rule] | None = None,
          context: Sequence[Rule] | None = None) -> tuple[Finding, ...]:
    """All findings of ``rules`` (default: ``default_rules()``) for a report, most severe first, then by code.

    Rules that read the others' findings (``after_others``) run last, over the findings of the rest and
    of the ``context`` rules that are not among ``rules`` (default: every rule on by default, at its
    default options), whose findings are not reported: GL301 asks whether the model explodes whether
    or not GL101 was selected.
    """
    rules = default_rules() if rules is None else rules
    context = default_rules() if context is None else context
    peers = {r.code: r for r in (*context, *rules)}
    for rule in (*rules, *context):
        rule.peers = peers
    findings = [f for rule in rules if not rule.after_others for f in rule.check(report)]
    later = [rule for rule in rules if rule.after_others]
    if later:
        codes = {r.code for r in rules}
        unreported = [f for rule in context if rule.code not in codes and not rule.after_others
                      for f in rule.check(report)]
        earlier = (*findings, *unreported)
        findings += [f for rule in later for f in rule.check_after(report, earlier)]
    return tuple(sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code)))


def suggest(findings: tuple[Finding, ...], rules: Sequence[Rule] | None, report: ModelReport) -> tuple[Finding, ...]:
    """Each finding whose rule names gradlint.init changes that fix it gets the first one that applies to
    this model (``report.applicable_changes``) appended to its recommendation, with the --what-if
    command that shows its effect."""
    by_code = {r.code: r for r in (default_rules() if rules is None else rules)}
    out = []
    for f in findings:
        rule = by_code.get(f.code)
        change = next((c for c in (rule.what_if if rule else ()) if c in report.applicable_changes), None)
        if change is not None:
            f = replace(f, recommendation=f"{f.recommendation.rstrip()} {what_if_hint(report, change)}")
        out.append(f)
    return tuple(out)


def suggesting(findings: tuple[Finding, ...], rules: Sequence[Rule] | None) -> bool:
    """Whether any finding comes from a rule that names a gradlint.init change."""
    codes = {r.code for r in (default_rules() if rules is None else rules) if r.what_if}
    return any(f.code in codes for f in findings)


__all__ = ["RULES", "Rule", "check", "default_rules", "registry", "suggest", "suggesting"]
