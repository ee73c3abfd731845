"""Renderers: small functions from results to text.  Machine formats never pass through rich.

Each machine format is a module here with ``render(output: Output) -> str``; ``text`` renders to a
rich console.  ``FORMATS`` is the table the command line and the configuration accept: a new format is its module
and its entry there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import split_target
from ..report import SEVERITIES, SEVERITY_RANK, Finding, ModelReport, TargetResult, WhatIf
from ..vocabulary import FIGURES, Figure

# Every format, with what it is for (the command line's help); each is the module of that name here.
FORMATS = {
    "text": "for people; coloured on a terminal",
    "json": "schema docs/schema/gradlint-1.json",
    "sarif": "SARIF 2.1.0, for code scanning",
    "github": "workflow annotations",
    "markdown": "a pull-request comment",
    "html": "a page with the Fig. 1 panels; what a notebook shows",
}


@dataclass(frozen=True)
class Output:
    """Everything a renderer may show: the results, the rules that ran, where the repository is."""

    results: list[TargetResult]
    rules: tuple = ()                   # the enabled rule instances (SARIF lists them in tool.driver.rules)
    root: Path = field(default_factory=Path.cwd)   # the repository root: machine formats give paths relative to it
    baseline: object | None = None      # a baseline comparison (gradlint.baseline.Comparison), when one was given
    skipped: tuple[tuple[str, str], ...] = ()   # (target, why): modules a file defines that are no model to probe
    sweep: object | None = None         # a scaling sweep (gradlint.scaling.Sweep), with --sweep
    fixes: tuple | None = None          # with --fix: an outcome per fix (gradlint.fix.Outcome)
    changed: tuple[str, ...] = ()       # with --fix: the files the fixes changed


def render(fmt: str, output: Output) -> str:
    """The text of a machine-readable format."""
    return importlib.import_module(f"{__name__}.{fmt}").render(output)


def repository_root(start: Path | None = None) -> Path:
    """The nearest folder holding ``.git`` above ``start`` (the working directory), else ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def relative_to_root(path: str | None, root: Path) -> str | None:
    """A report path (relative to the working directory, or to a package's install folder) relative to
    the repository root, with forward slashes; None when it is not inside the repository."""
    if path is None:
        return None
    full = (Path.cwd() / path).resolve()
    # A path relative to a package's install folder resolves, from here, to no file of the repository.
    if not full.is_file():
        return None
    try:
        return full.relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def target_file(target: str, root: Path) -> str | None:
    """The file a command-line target names, relative to the repository root; None for a module target
    or a file that does not exist (what a failed target's error can be attached to)."""
    where, _, is_file = split_target(target)
    return relative_to_root(where, root) if is_file else None


def model_key(result: TargetResult, root: Path) -> str:
    """A model's identity across runs: ``file relative to the repository root:NAME`` (the target's own
    spelling when it is no file), whatever the working directory or the spelling on the command line."""
    where, name, is_file = split_target(result.target)
    place = (relative_to_root(where, root) if is_file else None) or where
    return f"{place}:{name}" if name else place


def verdict(r: TargetResult) -> str:
    """The worst severity among a result's findings, or "clean"."""
    if not r.findings:
        return "clean"
    return max((f.severity for f in r.findings), key=SEVERITY_RANK.__getitem__)


def message_and_fix(f: Finding) -> str:
    """A finding's message and its fix, as one text (annotations and SARIF results carry no separate fix)."""
    return f"{f.message}\nfix: {f.recommendation}"


def counts(results: list[TargetResult]) -> dict[str, int]:
    tally = {s: 0 for s in SEVERITIES}
    for r in results:
        for f in r.findings:
            tally[f.severity] += 1
    return {"targets": len(results), "failed": sum(not r.ok for r in results),
            "errors": tally["error"], "warnings": tally["warning"], "infos": tally["info"],
            "suppressed": sum(len(r.suppressed) for r in results)}


def coverage_text(coverage: float | None) -> str:
    """Parameter coverage as the reports show it: ``100.0%``, or ``n/a``."""
    return "n/a" if coverage is None else f"{coverage:.1%}"


def data_path_text(probe) -> str:
    """Which input the data path starts from, and what the other inputs are."""
    chosen = "named by you" if probe.data_input_from == "user" else "chosen from the graph"
    text = f"data path from {probe.data_input or 'every input'} ({chosen})"
    for role, label in (("encoder", "encoder stream"), ("conditioning", "conditioning"), ("unused", "no path to Y")):
        names = [x.name for x in probe.inputs if x.role == role]
        if names:
            text += f"; {label}: {', '.join(names)}"
    return text


def output_lines(output, logits: bool = True) -> list[str]:
    """What Y is, when it is not simply the model's one output, and (``logits``) the softmax of logits at init."""
    lines = []
    what = []
    if output.selected:
        what.append(f"the output {output.selected!r}")
    elif output.logits_only:
        what.append(f"the logits, the first of {output.tensors} output tensors (--model-output picks another)")
    elif output.tensors > 1:
        what.append(f"{output.tensors} output tensors taken together (pick one with --model-output)")
    if output.before_softmax:
        what.append(f"the logits read by the model's own {output.before_softmax}")
    if what:
        lines.append("Y: " + "; ".join(what))
    if logits and output.logits:
        lines.append(f"output at init: {output.classes} classes, cross-entropy {output.init_loss:.3g} against "
                     f"ln C = {output.uniform_loss:.3g}, logit std {output.logit_std:.3g}, "
                     f"{output.saturated_fraction:.0%} of samples saturated (top probability >= 0.99)")
    return lines


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def severity_counts(c: dict[str, int]) -> str:
    """``2 errors, 1 warning, 3 info`` from ``counts()``."""
    return f"{plural(c['errors'], 'error')}, {plural(c['warnings'], 'warning')}, {c['infos']} info"


def total_line(results: list[TargetResult], strong=lambda text: text, failed_note: str = "", skipped: int = 0) -> str:
    """The report's last line: targets analysed, findings by severity, suppressed, failed, skipped."""
    c = counts(results)
    tail = f"{strong(plural(c['targets'] - c['failed'], 'target') + ' analysed')}: {severity_counts(c)}"
    if c["suppressed"]:
        tail += f"; {c['suppressed']} suppressed by comments"
    if c["failed"]:
        tail += f"; {c['failed']} could not be analysed{failed_note}"
    if skipped:
        tail += f"; {plural(skipped, 'module')} of the files skipped (not probed: see above)"
    return tail


def skipped_line(target: str, why: str) -> str:
    """One skipped module: a module a file defines (found, not named) that could not be probed."""
    return f"skipped {target}: {why}"


# --------------------------------------------------------------------------- --what-if, as the renderers show it


def what_if_status(before: tuple[Finding, ...], after: WhatIf) -> list[tuple[Finding, str]]:
    """For each finding before and each new one after: 'gone', 'remains', 'now <severity>' or 'new'."""
    if not after.applied:
        return [(f, "n/a") for f in before]
    later = {}
    for f in after.findings:
        later.setdefault(f.code, []).append(f)
    out: list[tuple[Finding, str]] = []
    for f in before:
        match = later.get(f.code)
        if not match:
            out.append((f, "gone"))
        else:
            worst = match[0]  # findings are sorted most severe first
            out.append((f, "remains" if worst.severity == f.severity else f"now {worst.severity}"))
    codes = {f.code for f in before}
    out += [(f, "new") for f in after.findings if f.code not in codes]
    return out


def compare_rows(report: ModelReport, variants: tuple[WhatIf, ...]) -> list[tuple[Figure, list[float | None]]]:
    """The figures shown side by side: (figure, [before, after each variant])."""
    reports = [report] + [w.report for w in variants]
    return [(f, [getattr(r.summary, f.name) if r is not None else None for r in reports])
            for f in FIGURES if f.what_if]
