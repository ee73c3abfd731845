"""Renderers: small functions from results to text.  Machine formats never pass through rich."""

from __future__ import annotations

from ..report import SEVERITIES, TargetResult


def counts(results: list[TargetResult]) -> dict[str, int]:
    tally = {s: 0 for s in SEVERITIES}
    for r in results:
        for f in r.findings:
            tally[f.severity] += 1
    return {"targets": len(results), "failed": sum(not r.ok for r in results),
            "errors": tally["error"], "warnings": tally["warning"], "infos": tally["info"],
            "suppressed": sum(len(r.suppressed) for r in results)}
