"""The HTML report: what a notebook shows for a result (``TargetResult._repr_html_``) and ``--format html``.

One section per model: the verdict, the key figures with their error bars, the findings with their
fixes, and the Fig. 1 panels inline (a PNG in the page, when matplotlib is installed).  Plain HTML with
inline styles, so it reads the same in Jupyter, VS Code and a browser; every text from the model or its
file is escaped.
"""

from __future__ import annotations

import base64
import html

from ..report import TargetResult
from ..rules.base import fmt, fmt_bar
from ..vocabulary import FIGURES
from . import Output, verdict

COLOURS = {"clean": "#2e7d32", "info": "#1565c0", "warning": "#ef6c00", "error": "#c62828"}
STYLE = ("<style>.gradlint table{border-collapse:collapse}.gradlint th,.gradlint td{padding:2px 10px;"
         "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}</style>")


def render(output: Output) -> str:
    """A standalone page with every result."""
    body = "\n".join(result_html(r) for r in output.results)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>gradlint report</title></head>\n"
            f"<body style=\"font-family:sans-serif\">\n{body}\n</body></html>\n")


def result_html(r: TargetResult, panels: bool = True) -> str:
    """One model's section (``panels``: with the Fig. 1 panels, when matplotlib can draw them)."""
    v = "not analysed" if not r.ok else verdict(r)
    badge = (f"<span style=\"background:{COLOURS.get(v, '#555')};color:white;padding:1px 8px;"
             f"border-radius:4px\">{html.escape(v)}</span>")
    parts = [f"<div class=\"gradlint\">{STYLE}<h3 style=\"margin-bottom:4px\">{html.escape(r.target)} {badge}</h3>"]
    if not r.ok:
        parts.append(f"<p>{html.escape(r.error.message)}</p></div>")
        return "\n".join(parts)
    parts += [_figures(r), _findings(r)]
    if panels:
        parts.append(_panels(r))
    parts.append("</div>")
    return "\n".join(p for p in parts if p)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Cells are HTML already (escape text before)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figures(r: TargetResult) -> str:
    s = r.report.summary
    rows = []
    for f in FIGURES:
        value = getattr(s, f.name)
        if value is None:
            continue
        shown = (f"{value:.3f}" if f.rate else fmt(value))
        error = getattr(s, f.name + "_error", None)
        if error:                               # an exact figure (error 0) shows no bar
            shown = f"{shown} +/- {error:.2g}" if f.rate else fmt_bar(value, error)
        rows.append((html.escape(f.label), html.escape(shown)))
    rows.insert(0, ("depth", f"{s.compositional_depth} compositional"))
    rows.insert(1, ("capture", html.escape(r.report.trace)))
    return _table(("figure", "value"), rows)


def _findings(r: TargetResult) -> str:
    if not r.findings:
        return "<p>No findings.</p>"
    rows = [(f"<b style=\"color:{COLOURS[f.severity]}\">{f.severity}</b>", html.escape(f"{f.code} {f.name}"),
             f"<code>{html.escape(f.layer)}</code>" if f.layer else "",
             html.escape(f.message) + f"<br><i>fix:</i> {html.escape(f.recommendation)}")
            for f in r.findings]
    return _table(("severity", "rule", "layer", "message and fix"), rows)


def _panels(r: TargetResult) -> str:
    """The Fig. 1 panels as an inline PNG; a note where matplotlib is missing."""
    try:
        from .plot import png
        data = png([(r.target, r.report)])
    except ImportError:
        return "<p><i>Install gradlint[plot] (matplotlib) for the Fig. 1 panels.</i></p>"
    encoded = base64.b64encode(data).decode("ascii")
    return f"<img alt=\"Fig. 1 panels\" style=\"max-width:100%\" src=\"data:image/png;base64,{encoded}\">"
