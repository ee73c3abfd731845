"""``--format json``: schema "gradlint/1", described by docs/schema/gradlint-1.json (fields may be added,
none renamed or dropped; tests validate every report they read against it).  Byte-identical across runs."""

from __future__ import annotations

import json

from .. import __version__
from ..report import TargetResult, to_plain
from . import Output, counts, relative_to_root, what_if_status

SCHEMA = "gradlint/1"


def result_dict(r: TargetResult) -> dict:
    rep = r.report
    return {
        "target": r.target,
        "ok": r.ok,
        "error": to_plain(r.error),
        "trace": rep.trace if rep else None,
        "trace_note": rep.trace_note if rep else None,
        "path": rep.path if rep else None,
        "line": rep.line if rep else None,
        "probe": to_plain(rep.probe) if rep else None,
        "summary": to_plain(rep.summary) if rep else None,
        "layers": to_plain(rep.layers) if rep else [],
        "residual_blocks": to_plain(rep.residual_blocks) if rep else [],
        "nonfinite": list(rep.nonfinite) if rep else [],
        "unmeasured": [{"module": name, "parameters": count, "why": why} for name, count, why in rep.unmeasured]
        if rep else [],
        "output": to_plain(rep.output) if rep else None,
        "shifts": to_plain(rep.shifts) if rep else [],
        "findings": to_plain(r.findings),
        "suppressed": to_plain(r.suppressed),
        "what_if": [_what_if(r, w) for w in r.what_if],
    }


def _what_if(r: TargetResult, w) -> dict:
    return {
        "change": w.change,
        "applied": w.applied,
        "reason": w.reason,
        "changed": list(w.changed),
        "skipped": [{"layer": name, "reason": why} for name, why in w.skipped],
        "summary": to_plain(w.report.summary) if w.report else None,
        "residual_blocks": to_plain(w.report.residual_blocks) if w.report else [],
        "findings": to_plain(w.findings),
        "finding_status": [{"code": f.code, "name": f.name, "severity": f.severity, "status": st}
                           for f, st in what_if_status(r.findings, w)],
    }


def rooted(value, root):
    """Every ``path`` in a result, relative to the repository root as the README promises (a file outside
    the repository, or inside an installed package, keeps the path it was reported with)."""
    if isinstance(value, dict):
        return {k: (relative_to_root(v, root) or v if k == "path" and isinstance(v, str) else rooted(v, root))
                for k, v in value.items()}
    if isinstance(value, list):
        return [rooted(v, root) for v in value]
    return value


def render(output: Output) -> str:
    doc = {
        "schema": SCHEMA,
        "version": __version__,
        "results": [rooted(result_dict(r), output.root) for r in output.results],
        "summary": counts(output.results),
        # modules the files define that were found, not named, and could not be probed (helpers)
        "skipped": [{"target": target, "why": why} for target, why in output.skipped],
    }
    if output.sweep is not None:   # --sweep: the sizes' figures, the fits and the threshold crossings
        from .sweep import as_dict

        doc["sweep"] = as_dict(output.sweep)
    if output.baseline is not None:   # --baseline: what is new, worse, absorbed and stale
        doc["baseline"] = output.baseline.as_dict()
    if output.fixes is not None:   # --fix: what was fixed, what was not and why
        from .fixes import as_dict

        doc["fixes"] = [{**rooted(as_dict(o), output.root),
                         "files": [relative_to_root(p, output.root) or p for p in o.files]} for o in output.fixes]
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"
