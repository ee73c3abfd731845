"""Frozen reports of every rule example (``tests/snapshots/<example>.json``), so that the rule tests
judge saved numbers and run in milliseconds without torch; and the findings the rules make of each
(``tests/snapshots/findings/<example>.txt``: code, severity, layer, message, fix), so that a changed
message or verdict fails a test, as ruff's snapshot tests do, and shows up in review as a diff.

    python tests/snapshots.py        # regenerate after a change to the probe or a rule; tests say when they are stale
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from gradlint.report import (Layer, ModelReport, OutputStats, ProbeInput, ProbeSettings, ResidualBlock, Shift, Summary,
                             to_plain)
from gradlint.rules import RULES, check

FOLDER = Path(__file__).resolve().parent / "snapshots"
FINDINGS = FOLDER / "findings"
TOLERANCE = 1e-3   # relative, for floats regenerated on another machine's arithmetic


def examples() -> dict[str, object]:
    """Every rule example factory (a bounded example's own factory), by name."""
    found = {}
    for rule in RULES:
        for entry in (*rule.triggers, *rule.clean):
            factory = getattr(entry, "factory", entry)
            found[factory.__name__] = factory
    return dict(sorted(found.items()))


def live(factory) -> ModelReport:
    import gradlint

    model, inputs = factory()
    return gradlint.lint(model, inputs, threads=1).report


def load(name: str) -> ModelReport:
    return from_plain(json.loads((FOLDER / f"{name}.json").read_text()))


def from_plain(d: dict) -> ModelReport:
    def shapes(v):
        return None if v is None else tuple(tuple(s) for s in v)

    probe = {**d["probe"], "input_shapes": shapes(d["probe"]["input_shapes"]),
             "reduced_from": shapes(d["probe"].get("reduced_from")),
             "inputs": tuple(ProbeInput(**{**x, "shape": tuple(x["shape"])}) for x in d["probe"].get("inputs", ()))}
    return ModelReport(**{
        **d, "probe": ProbeSettings(**probe), "summary": Summary(**d["summary"]), "output": OutputStats(**d["output"]),
        "shifts": tuple(Shift(**x) for x in d["shifts"]),
        "layers": tuple(Layer(**x) for x in d["layers"]),
        "residual_blocks": tuple(ResidualBlock(**b) for b in d["residual_blocks"]),
        "nonfinite": tuple(d["nonfinite"]), "unmeasured": tuple(tuple(u) for u in d["unmeasured"]),
        "applicable_changes": tuple(d["applicable_changes"]),
    })


def text(report: ModelReport) -> str:
    return json.dumps(to_plain(report), indent=1) + "\n"


def differences(a, b, where: str = "") -> list[str]:
    """Where two plain reports differ beyond ``TOLERANCE`` on floats (exactly on everything else)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a.keys() ^ b.keys())}"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items, not {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return [] if math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=1e-9) else [f"{where}: {a} != {b}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def findings_text(report: ModelReport) -> str:
    """Every finding gradlint's own rules make of a report at their default options, as a reviewer reads it."""
    rules = [cls() for cls in RULES if cls.enabled_by_default()]
    lines = []
    for f in check(report, rules, rules):
        lines += [f"{f.code} {f.severity} at {f.layer or '(the model)'}", f"  message: {f.message}",
                  f"  fix: {f.recommendation}"]
    return "\n".join(lines) + "\n" if lines else "(no findings)\n"


def write() -> None:
    FINDINGS.mkdir(parents=True, exist_ok=True)
    names = examples()
    for name, factory in names.items():
        report = live(factory)
        (FOLDER / f"{name}.json").write_text(text(report))
        (FINDINGS / f"{name}.txt").write_text(findings_text(report))
    for stale in (*FOLDER.glob("*.json"), *FINDINGS.glob("*.txt")):
        if stale.stem not in names:
            stale.unlink()
    print(f"{FOLDER}: {len(names)} reports and their findings written", file=sys.stderr)


if __name__ == "__main__":
    write()
