"""The human report (rich): verdict, summary figures, per-layer table, findings with fixes."""

from __future__ import annotations

import textwrap

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..report import PASS_THROUGH_SHARE, Layer, TargetResult
from ..rules.base import fmt, fmt_bar
from ..vocabulary import EXPORT, TIERS
from . import (compare_rows, counts, coverage_text, data_path_text, output_lines, plural, severity_counts,
               skipped_line, total_line, verdict, what_if_status)

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan", "clean": "bold green"}
MAX_ROWS = 40
EDGE_ROWS = 8


def _rows(r: TargetResult) -> list[tuple[Layer, Layer | None]]:
    """One row per input, depth-bearing layer or residual merge, with the nonlinearity it feeds."""
    rep = r.report
    merges = {b.merge for b in rep.residual_blocks}
    rows: list[tuple[Layer, Layer | None]] = []
    for x in rep.layers:
        if x.kind in ("input", "layer", "embedding") or x.name in merges:
            rows.append((x, None))
        elif x.kind == "nonlinearity":
            if rows and rows[-1][1] is None and rows[-1][0].kind != "input":
                rows[-1] = (rows[-1][0], x)
            else:
                rows.append((x, x))
    return rows


def _worst(rows: list[tuple[Layer, Layer | None]], r: TargetResult) -> set[int]:
    """Rows to highlight: extremes of each column and the rows findings point at."""
    picks: set[int] = set()
    named = {f.layer for f in r.findings if f.layer}

    def pick(values, key):
        vals = [(i, v) for i, v in values if v is not None]
        if vals:
            picks.add(key(vals, key=lambda t: t[1])[0])

    pick([(i, a.gsc) for i, (a, _) in enumerate(rows)], max)
    pick([(i, n.sign_diversity if n else None) for i, (_, n) in enumerate(rows)], min)
    pick([(i, n.relative_spread if n else None) for i, (_, n) in enumerate(rows)], min)
    pick([(i, n.nonlinearity if n else None) for i, (_, n) in enumerate(rows)], min)
    picks |= {i for i, (a, n) in enumerate(rows) if a.name in named or (n is not None and n.name in named)}
    return picks


def _table(r: TargetResult) -> Table:
    rows = _rows(r)
    hot = _worst(rows, r)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col, justify in (("layer", "left"), ("op", "left"), ("depth", "right"), ("GSC", "right"),
                         ("pre-act std", "right"), ("spread", "right"), ("sign div", "right"),
                         ("nonlin", "right"), ("defect", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    shown = set(range(len(rows)))
    if len(rows) > MAX_ROWS:
        shown = set(range(EDGE_ROWS)) | set(range(len(rows) - EDGE_ROWS, len(rows))) | hot
    skipped = 0
    for i, (a, n) in enumerate(rows):
        if i not in shown:
            skipped += 1
            continue
        if skipped:
            table.add_row(Text(f"... {skipped} rows", style="dim"))
            skipped = 0
        op = a.op if n is None or n is a else f"{a.op}>{n.op}"
        cells = [a.name + (f" (from {a.side})" if a.side else ""), op, "" if a.depth is None else str(a.depth), fmt(a.gsc) if a.gsc is not None else "",
                 *((fmt(getattr(n, k)) if n is not None and getattr(n, k) is not None else "")
                   for k in ("preact_std", "relative_spread", "sign_diversity", "nonlinearity")),
                 fmt(a.orthogonality_defect) if a.orthogonality_defect is not None else ""]
        table.add_row(*map(Text, cells), style="bold" if i in hot else None)  # names are never markup
    return table


def _summary(r: TargetResult) -> Text:
    s, p = r.report.summary, r.report.probe
    shapes = ", ".join("x".join(str(d) for d in shape) for shape in p.input_shapes)
    rate = "n/a"
    if s.explosion_rate is not None:
        bar = f" +/- {s.explosion_rate_error:.2g}" if s.explosion_rate_error is not None else ""
        rate = f"{s.explosion_rate:.3f}{bar}/layer (R^2 {fmt(s.explosion_fit_r2)})"
    eff = "n/a"
    if s.effective_depth is not None:
        eff = fmt_bar(s.effective_depth, s.effective_depth_error or None)
        if s.effective_depth_p5 != s.effective_depth_p95:
            eff += f" (5-95%: {s.effective_depth_p5}-{s.effective_depth_p95})"
    blocks = r.report.residual_blocks
    threads = f", {plural(p.threads, 'thread')}" if p.threads else ""
    lines = [
        f"trace {r.report.trace}; probe {shapes} ({p.input_source}), seed {p.seed}, {p.device} {p.dtype}{threads}; "
        f"parameter coverage {coverage_text(s.parameter_coverage)}",
        *([f"captured by {TIERS[EXPORT]}: {r.report.trace_note}"] if r.report.trace == EXPORT and r.report.trace_note
          else []),
        *([data_path_text(p)] if len(p.inputs) > 1 else []),
        *output_lines(r.report.output),
        *([f"probe inputs reduced from {', '.join('x'.join(map(str, x)) for x in p.reduced_from)}: {p.reduced_why}"]
          if p.reduced_from else []),
        *([f"not measured: {', '.join(f'{name} ({count:,})' for name, count, _ in r.report.unmeasured)}"]
          if r.report.unmeasured else []),
        f"depth {s.compositional_depth} compositional, {eff} effective; {plural(len(blocks), 'residual block')}",
        *(_residual_lines(blocks) if blocks else []),
        f"GSC input {fmt_bar(s.gsc_input, s.gsc_input_error)}, max {fmt_bar(s.gsc_max, s.gsc_max_error)}, rate {rate}"
        + (f", relative to {s.gsc_anchor}" if s.gsc_anchor else ""),
        f"min sign diversity {fmt_bar(s.min_sign_diversity, s.min_sign_diversity_error)}, "
        f"min spread {fmt_bar(s.min_relative_spread, s.min_relative_spread_error)}, "
        f"min pre-act std {fmt(s.min_preact_std)}, mean orthogonality defect {fmt(s.mean_orthogonality_defect)}",
        *_through_time(r.report.layers),
    ]
    return Text("\n".join("  " + x for x in lines))


def _through_time(layers) -> list[str]:
    """A recurrent layer's gradient through time (docs/metrics.md): what its first step receives."""
    return [f"through time at {x.name}: the first of {x.time_steps} steps gets {fmt(x.time_reach)} of the last "
            f"step's gradient ({x.time_rate:.3f}x per step)" for x in layers if x.time_reach is not None]


def _residual_lines(blocks) -> list[str]:
    def span(values):
        values = [v for v in values if v is not None]
        return f"{fmt(min(values))}-{fmt(max(values))}" if values else "n/a"

    def names(chosen):
        chosen = [b.merge for b in chosen]
        if not chosen:
            return "none"
        return ", ".join(chosen[:4]) + (f" (+{len(chosen) - 4} more)" if len(chosen) > 4 else "")

    zero = sum(b.zero_branch for b in blocks)
    return [f"dilution k {span(b.dilution for b in blocks)}"
            + (f" ({zero} of {len(blocks)} branches zero at init)" if zero else "")
            + f", branch share {span(b.branch_share for b in blocks)}",
            f"pass-through (share < {fmt(PASS_THROUGH_SHARE)}): {names(b for b in blocks if b.pass_through)}"]


def _findings(r: TargetResult, width: int) -> Group:
    parts = []
    indent = " " * 10
    wrap = max(40, width - 2)
    for f in r.findings:
        where = f"{f.path}:{f.line}" if f.path and f.line else (f.path or "")
        head = Text()
        head.append(f"  {f.severity:<7} ", style=STYLE[f.severity])
        head.append(f"{f.code} {f.name}", style="bold")
        head.append(f"  {where}" + (f" [{f.layer}]" if f.layer else "") + (f" (built at {f.library})" if f.library else ""))
        parts += [head, Text(textwrap.fill(f.message, wrap, initial_indent=indent, subsequent_indent=indent,
                                           break_on_hyphens=False)),
                  Text(textwrap.fill(f"fix: {f.recommendation}", wrap, initial_indent=indent, subsequent_indent=indent,
                                     break_on_hyphens=False, break_long_words=False), style="dim")]
    return Group(*parts, Text(""))


def _what_if(r: TargetResult) -> Group:
    """Before and after each change, side by side: the summary figures, then every finding's fate."""
    parts = []
    for w in r.what_if:
        if w.applied:
            note = f"re-initialised {plural(len(w.changed), 'parameter')}"
            if w.skipped:
                note += "; left as they were: " + ", ".join(f"{name} ({why})" for name, why in w.skipped[:4])
                note += f" (+{len(w.skipped) - 4} more)" if len(w.skipped) > 4 else ""
        else:
            note = f"not applicable: {w.reason}"
        head = Text("  what if: ", style="bold")
        head.append(f"--what-if {w.change}", style="bold")
        parts.append(head)
        parts.append(Text(textwrap.fill(note, 110, initial_indent="    ", subsequent_indent="    "), style="dim"))
    applied = [w for w in r.what_if if w.applied]
    if applied:
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("", no_wrap=True)
        table.add_column("before", justify="right", no_wrap=True)
        for w in applied:
            table.add_column(w.change, justify="right", no_wrap=True)
        for figure, values in compare_rows(r.report, tuple(applied)):
            show = (lambda v: f"{v:.3f}") if figure.rate else fmt
            table.add_row(figure.label, *(show(v) if v is not None else "n/a" for v in values))
        fates = [what_if_status(r.findings, w) for w in applied]
        seen: list[tuple[str, str]] = []
        for fate in fates:
            for f, _ in fate:
                if (f.code, f.name) not in seen:
                    seen.append((f.code, f.name))
        for code, name in seen:
            before = next((f.severity for f in r.findings if f.code == code), "-")
            cells = []
            for fate in fates:
                cell = next((st if st != "new" else f"new {f.severity}" for f, st in fate if f.code == code), "-")
                cells.append(cell)
            table.add_row(f"{code} {name}", before, *cells)
        parts += [Text(""), Padding(table, (0, 0, 0, 4), expand=False)]
    return Group(*parts, Text(""))


def render(results: list[TargetResult], console: Console, skipped=()) -> None:
    for r in results:
        if not r.ok:
            continue
        v = verdict(r)
        c = counts([r])
        head = Text()
        head.append(r.target, style="bold")
        head.append("  ")
        head.append(v.upper(), style=STYLE[v])
        if r.findings:
            head.append(f"  ({severity_counts(c)})")
        if r.suppressed:
            codes = ", ".join(sorted({f.code for f in r.suppressed}))
            head.append(f"  [{len(r.suppressed)} suppressed: {codes}]", style="dim")
        if r.cached:  # the only difference a cached report makes to any output (docs/configuration.md, "Cache")
            head.append("  (from cache)", style="dim")
        console.print(Group(head, _summary(r), Text(""), _table(r), Text("")))
        if r.findings:
            console.print(_findings(r, console.width))
        if r.what_if:
            console.print(_what_if(r))
    for target, why in skipped:
        console.print(Text(skipped_line(target, why), style="dim"))
    console.print(total_line(results, failed_note=" (see stderr)", skipped=len(skipped)))
