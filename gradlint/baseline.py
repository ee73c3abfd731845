"""Baselines with a metric ratchet: record what a project's models are today, fail only on what gets worse.

``gradlint --write-baseline [FILE]`` records every model's findings and key figures in
``.gradlint-baseline.json`` (versioned).  ``gradlint --baseline FILE`` then fails only on findings that
are new, or whose measured value got worse beyond the tolerance (a model whose input-side GSC doubles
fails even though it was already flagged), reports the entries nothing matched any more (stale: fixed,
or the model is gone) and says how many findings the baseline absorbed.

Entries are keyed by rule code, the model's file relative to the repository root, the model's name
and the layer path: never by line number, so code moving in a file does not invalidate them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import GradlintError
from .render import model_key, plural
from .vocabulary import FIGURES
from .report import SEVERITY_RANK, Finding, TargetResult, at_or_above, clean_number, to_plain

FILE = ".gradlint-baseline.json"
VERSION = 1
TOLERANCE = 0.25   # relative: a value 25% worse than the baseline's is worse
# The figures recorded per model, and which way is worse.  The input-side GSC is worse away from 1 either
# way (exploding above, vanishing below: GL101, GL102); the largest GSC is at least 1 (the output's own).
METRICS = {f.name: f.worse for f in FIGURES if f.baseline}


class BaselineError(GradlintError):
    kind = "input"


def finding_key(finding: Finding) -> tuple[str, str]:
    return finding.code, finding.layer or ""


def worse_direction(finding: Finding) -> str:
    """"higher" when a larger value is worse (GSC, a run length), "lower" when a smaller one is (sign
    diversity, dilution, coverage): a finding fires on the bad side of its threshold."""
    if finding.value is None or finding.threshold is None:
        return "higher"
    return "lower" if finding.value < finding.threshold else "higher"


def is_worse(now: float | None, before: float | None, direction: str, tolerance: float) -> bool:
    if now is None or before is None:
        return False
    if direction == "away from 1":   # on a log scale: |ln now| beyond |ln before| by the tolerance's factor
        if now <= 0 or before <= 0:
            return False
        return abs(math.log(now)) > abs(math.log(before)) + math.log1p(tolerance)
    if direction == "higher":
        return now > before * (1 + tolerance) if before >= 0 else now > before + abs(before) * tolerance
    return now < before / (1 + tolerance) if before > 0 else now < before - abs(before) * tolerance


def record(results: list[TargetResult], root: Path) -> dict:
    """The baseline document of the analysed models (``results`` that failed are not recorded)."""
    models = {}
    for r in results:
        if not r.ok:
            continue
        s = r.report.summary
        models[model_key(r, root)] = {
            "metrics": {k: clean_number(getattr(s, k)) for k in METRICS},
            "findings": [{"code": f.code, "layer": f.layer or "", "severity": f.severity,
                          "value": clean_number(f.value)}
                         for f in sorted(r.findings, key=lambda f: (f.code, f.layer or ""))],
        }
    return {"version": VERSION, "gradlint": __version__, "models": dict(sorted(models.items()))}


def write(results: list[TargetResult], path: Path, root: Path) -> int:
    """Record the analysed models in ``path``; returns how many findings were recorded."""
    doc = record(results, root)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return sum(len(m["findings"]) for m in doc["models"].values())


def read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read the baseline ({exc.strerror}); write one with --write-baseline") from exc
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not a gradlint baseline (invalid JSON at line {exc.lineno})") from exc
    if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("models"), dict):
        raise BaselineError(f"{path}: not a version {VERSION} gradlint baseline; write it again with --write-baseline")
    return doc


@dataclass
class Change:
    """One model's standing against the baseline."""

    key: str
    new: list[Finding] = field(default_factory=list)       # not in the baseline
    worse: list[tuple[Finding, float | None]] = field(default_factory=list)   # (finding, its baseline value)
    absorbed: list[Finding] = field(default_factory=list)  # in the baseline, not worse
    stale: list[dict] = field(default_factory=list)        # baseline entries nothing matched
    metrics: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)   # name -> (before, after)
    regressed: list[str] = field(default_factory=list)     # metrics worse beyond the tolerance


@dataclass
class Comparison:
    path: str
    tolerance: float
    models: dict[str, Change]
    gone: list[str]                                         # models in the baseline that were not analysed

    @property
    def failing(self) -> list[Finding]:
        return [f for c in self.models.values() for f in (*c.new, *(w for w, _ in c.worse))]

    @property
    def absorbed(self) -> int:
        return sum(len(c.absorbed) for c in self.models.values())

    @property
    def stale(self) -> int:
        return sum(len(c.stale) for c in self.models.values())

    def counts(self) -> dict[str, int]:
        return {"new": sum(len(c.new) for c in self.models.values()),
                "worse": sum(len(c.worse) for c in self.models.values()),
                "absorbed": self.absorbed, "stale": self.stale, "gone": len(self.gone)}

    def tally(self) -> str:
        """``4 findings absorbed, 0 new, 0 worse (tolerance 25%), 0 stale``: the baseline line's counts."""
        c = self.counts()
        return (f"{plural(c['absorbed'], 'finding')} absorbed, {c['new']} new, {c['worse']} worse "
                f"(tolerance {self.tolerance:.0%}), {c['stale']} stale")

    def as_dict(self) -> dict:
        """The comparison as the JSON report's ``baseline`` section (docs/schema/gradlint-1.json)."""
        def finding(model: str, f: Finding, **extra) -> dict:
            return {"model": model, **to_plain(f), **extra}

        return {
            "path": self.path,
            "tolerance": self.tolerance,
            "counts": self.counts(),
            "new": [finding(k, f) for k, c in self.models.items() for f in c.new],
            "worse": [finding(k, f, baseline_value=before) for k, c in self.models.items() for f, before in c.worse],
            "stale": [{"model": k, **e} for k, c in self.models.items() for e in c.stale],
            "gone": list(self.gone),
            "models": {k: {"metrics": {name: {"before": b, "after": a} for name, (b, a) in c.metrics.items()},
                           "regressed": list(c.regressed), "absorbed": len(c.absorbed)}
                       for k, c in self.models.items()},
        }


def compare(results: list[TargetResult], doc: dict, root: Path, path: str,
            tolerance: float = TOLERANCE) -> Comparison:
    models: dict[str, Change] = {}
    seen = set()
    for r in results:
        if not r.ok:
            continue
        key = model_key(r, root)
        seen.add(key)
        before = doc["models"].get(key, {"metrics": {}, "findings": []})
        entries = {(e["code"], e["layer"]): e for e in before["findings"]}
        change = Change(key)
        for f in r.findings:
            entry = entries.pop(finding_key(f), None)
            if entry is None:
                change.new.append(f)
            elif (SEVERITY_RANK[f.severity] > SEVERITY_RANK.get(entry["severity"], 0)
                  or is_worse(f.value, entry.get("value"), worse_direction(f), tolerance)):
                change.worse.append((f, entry.get("value")))
            else:
                change.absorbed.append(f)
        change.stale = list(entries.values())
        s = r.report.summary
        for name, direction in METRICS.items():
            old, now = before["metrics"].get(name), clean_number(getattr(s, name))
            change.metrics[name] = (old, now)
            if is_worse(now, old, direction, tolerance):
                change.regressed.append(name)
        models[key] = change
    gone = sorted(k for k in doc["models"] if k not in seen)
    return Comparison(path, tolerance, models, gone)


def fails(comparison: Comparison, fail_on: str) -> bool:
    """Exit 1 with a baseline: a new or worse finding at or above ``fail_on``."""
    return bool(at_or_above(comparison.failing, fail_on))


def summary_line(comparison: Comparison) -> str:
    line = f"baseline {comparison.path}: {comparison.tally()}"
    if comparison.gone:
        line += f"; not analysed now: {', '.join(comparison.gone)}"
    return line
