"""What ``--fix`` and ``--diff`` did, for the text report (lines) and the JSON report (``fixes``)."""

from __future__ import annotations

from . import plural


def lines(outcomes, changed: list[str], written: bool = True) -> list[str]:
    """A count line, then one line per fix: fixed (or would be, with ``--diff``) or not, and why."""
    if not outcomes:
        return ["No finding has an automatic fix."]
    done = [o for o in outcomes if o.applied]
    hidden = [o for o in outcomes if not o.applied and o.reason and "--unsafe-fixes" in o.reason]
    verb = "Fixed" if written else "Would fix"
    files = f" ({plural(len(changed), 'file')} changed: {', '.join(changed)})" if changed else ""
    out = [f"{verb} {len(done)} of {plural(len(outcomes), 'finding')} with a fix{files}."]
    for o in outcomes:
        f = o.fix
        where = f" at {f.path}:{f.line}" if f.path and f.line else ""
        state = ("fixed" if written else "would fix") if o.applied else "not fixed"
        why = f": {o.reason}" if not o.applied else ""
        out.append(f"  {state} {f.code} in {f.target}{where}: {f.description}{why}")
    if hidden:
        out.append(f"{len(hidden)} hidden fix{'es' if len(hidden) != 1 else ''} can be enabled with --unsafe-fixes.")
    return out


def as_dict(o) -> dict:
    f = o.fix
    return {"code": f.code, "target": f.target, "path": f.path, "line": f.line, "safe": f.safe,
            "description": f.description, "applied": o.applied, "reason": o.reason, "files": list(o.files)}
