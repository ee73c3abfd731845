"""The rule registry: one rule a module (``gl101_exploding_gradients.py``: the rule, and the example models
only it uses), found by walking this package, in code order.  ``check`` runs them over a report."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Sequence

from .. import suppress
from ..report import SEVERITY_RANK, Finding, ModelReport
from .base import Rule

_RULE_MODULE = re.compile(r"[a-z]{1,8}[0-9]{3}_[a-z0-9_]+")   # a rule's code, lower-case, then its name


def _own_rules() -> tuple[type[Rule], ...]:
    """The rule class each rule module of this package defines, in code order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if _RULE_MODULE.fullmatch(info.name):
            module = importlib.import_module(f"{__name__}.{info.name}")
            found += [obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, Rule)
                      and obj.__module__ == module.__name__ and "code" in vars(obj)]
    return tuple(sorted(found, key=lambda cls: cls.code))


RULES: tuple[type[Rule], ...] = _own_rules()


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


def judge(report: ModelReport, rules: Sequence[Rule] | None = None,
          context: Sequence[Rule] | None = None) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """The one judging step, for a model and its --what-if variants alike: the findings ``check`` makes,
    split into those reported and those a ``# gradlint: ignore`` comment suppresses."""
    return suppress.split(report, check(report, rules, context))


__all__ = ["RULES", "Rule", "check", "default_rules", "judge", "registry"]
