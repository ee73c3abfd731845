"""Suppression comments: ``# gradlint: ignore[GL101]`` (codes or prefixes) or ``# gradlint: ignore``.

A comment silences a finding when it sits on the line of the model's class, factory or instance,
or on the line where the finding's layer is constructed.  Suppressed findings are kept apart and
counted, never silently dropped.
"""

from __future__ import annotations

import io
import re
import tokenize
from functools import lru_cache

from .report import Finding, ModelReport

_COMMENT = re.compile(r"\bgradlint:\s*ignore(?:\[([^\]]*)\])?", re.IGNORECASE)  # anywhere in a comment
ALL = frozenset({"*"})        # a bare `ignore`: every code


@lru_cache(maxsize=256)
def comments(path: str) -> dict[int, frozenset[str]]:
    """Line -> codes a ``gradlint: ignore`` comment on it names (``ALL`` for a bare ``ignore``)."""
    try:
        with open(path, "rb") as fh:
            source = fh.read()
        tokens = list(tokenize.tokenize(io.BytesIO(source).readline))
    except (OSError, SyntaxError, tokenize.TokenError):
        return {}
    found: dict[int, frozenset[str]] = {}
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        m = _COMMENT.search(tok.string)
        if m is None:
            continue
        codes = frozenset(c.strip().upper() for c in (m.group(1) or "").split(",") if c.strip())
        found[tok.start[0]] = ALL if m.group(1) is None else codes
    return found


def _silences(codes: frozenset[str] | None, code: str) -> bool:
    if codes is None:
        return False
    return codes == ALL or any(code.startswith(c) for c in codes)


def split(report: ModelReport, findings: tuple[Finding, ...]) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """(kept, suppressed) findings, judged by the comments on the model's line and each finding's line."""
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    for f in findings:
        places = {(report.path, report.line), (f.path, f.line)}
        if any(p and line and _silences(comments(p).get(line), f.code) for p, line in places):
            suppressed.append(f)
        else:
            kept.append(f)
    return tuple(kept), tuple(suppressed)
