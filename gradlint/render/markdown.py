"""``--format markdown``: a compact report for a pull-request comment or a job summary.

Per model: a heading with the target and verdict, one table row of key figures, the findings as a
table and their fixes; a failed target with its error; a one-line total at the end.  With a baseline
(``--baseline``): what it absorbed first, then for each model that changed its figures before and
after, each finding's standing (new, worse, in the baseline) and the baseline's entries it no longer
has (stale).
"""

from __future__ import annotations

from ..report import TargetResult
from ..rules.base import fmt
from ..vocabulary import FIGURE
from . import (Output, counts, coverage_text, data_path_text, model_key, output_lines, plural, relative_to_root,
               severity_counts, skipped_line, total_line, verdict)

CHANGED = 0.01   # a figure that moved by more than 1% changed (the probe is deterministic; this is rounding)
FIGURES = ("capture", "GSC input", "GSC max", "explosion rate", "effective / compositional depth",
           "min sign diversity", "parameter coverage")


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header, rows) -> list[str]:
    return [_row(header), _row("---" for _ in header), *(_row(cell(c) for c in r) for r in rows)]


def _figures(r: TargetResult) -> list[str]:
    s = r.report.summary
    rate = "n/a" if s.explosion_rate is None else f"{s.explosion_rate:.3f}/layer (R^2 {fmt(s.explosion_fit_r2)})"
    effective = "n/a" if s.effective_depth is None else fmt(s.effective_depth)
    notes = ([data_path_text(r.report.probe)] if len(r.report.probe.inputs) > 1 else []) + output_lines(r.report.output, logits=False)
    return _table(FIGURES, [(r.report.trace, fmt(s.gsc_input), fmt(s.gsc_max), rate, f"{effective} / {s.compositional_depth}",
                             fmt(s.min_sign_diversity), coverage_text(s.parameter_coverage))]) + [
        *([""] if notes else []), *(f"- {cell(n)}" for n in notes)]


def _findings(r: TargetResult, root, change=None) -> list[str]:
    standing = _standing(change)
    rows = []
    for f in r.findings:
        file = relative_to_root(f.path, root) or f.path
        where = f"{file}:{f.line}" if file and f.line else (file or "")
        row = (f.severity, f"{f.code} {f.name}", f"`{f.layer}`" if f.layer else "", f"`{where}`" if where else "",
               f.message)
        rows.append(row if change is None else (*row, standing.get(id(f), "in the baseline")))
    header = ("severity", "rule", "layer", "location", "message", *(("baseline",) if change is not None else ()))
    fixes = [f"- {f.code}: {' '.join(f.recommendation.split())}" for f in r.findings]
    return [*_table(header, rows), "", "**Fixes**", "", *fixes]


def _standing(change) -> dict[int, str]:
    """A finding's standing against the baseline, by the finding's identity."""
    if change is None:
        return {}
    out = {id(f): "**new**" for f in change.new}
    for f, before in change.worse:
        out[id(f)] = f"**worse** (was {fmt(before)})" if before is not None else "**worse**"
    return out


def _moved(before, after) -> bool:
    if before is None or after is None:
        return before != after
    return abs(after - before) > CHANGED * max(abs(before), abs(after))


def _before_after(change) -> list[str]:
    """The figures that moved since the baseline, before and after; worse beyond the tolerance is marked."""
    rows = [(FIGURE[name].label, fmt(before) if before is not None else "n/a",
             fmt(after) if after is not None else "n/a", "worse" if name in change.regressed else "")
            for name, (before, after) in change.metrics.items() if _moved(before, after)]
    return _table(("figure", "baseline", "now", ""), rows) if rows else []


def _stale(change) -> list[str]:
    entries = [f"- {e['code']}" + (f" at `{e['layer']}`" if e["layer"] else "") + f" ({e['severity']})"
               for e in change.stale]
    return ["**In the baseline, gone now** (stale; write the baseline again to drop them)", "", *entries]


def _model(r: TargetResult, root, comparison=None) -> list[str]:
    if not r.ok:
        return [f"### `{r.target}`: could not be analysed", "", f"{r.error.kind} error: {r.error.message}"]
    v, c = verdict(r), counts([r])
    head = f"### `{r.target}`: {v}"
    if r.findings:
        head += f" ({severity_counts(c)})"
    if r.suppressed:
        head += f", {len(r.suppressed)} suppressed ({', '.join(sorted({f.code for f in r.suppressed}))})"
    change = comparison.models.get(model_key(r, root)) if comparison is not None else None
    extra: list[str] = []
    if change is not None:
        news = [plural(len(change.new), "new finding")] if change.new else []
        news += [f"{len(change.worse)} worse"] if change.worse else []
        news += [f"{len(change.stale)} stale"] if change.stale else []
        moved = _before_after(change)
        head += f"; since the baseline: {', '.join(news)}" if news else (
            "; since the baseline: figures moved" if moved else "; unchanged since the baseline")
        extra = [*(["", *moved] if moved else []), *(["", *_stale(change)] if change.stale else [])]
    return [head, "", *_figures(r), *extra, *(["", *_findings(r, root, change)] if r.findings else [])]


def _baseline(comparison) -> list[str]:
    line = f"**Baseline** `{comparison.path}`: {comparison.tally()}"
    if comparison.gone:
        line += f"; in the baseline but not analysed now: {', '.join(f'`{k}`' for k in comparison.gone)}"
    return [line, ""]


def render(output: Output) -> str:
    lines = ["## gradlint", ""]
    if output.baseline is not None:
        lines += _baseline(output.baseline)
    for r in output.results:
        lines += [*_model(r, output.root, output.baseline), ""]
    lines += [f"- {skipped_line(target, why)}" for target, why in output.skipped]
    lines += [""] if output.skipped else []
    lines.append(total_line(output.results, strong=lambda text: f"**{text}**", skipped=len(output.skipped)))
    return "\n".join(lines) + "\n"
