"""``--what-if``: probe a copy of the model after one change to its initial weights, and compare.

The change comes from ``gradlint.init``; the copy is probed on the same inputs with the same seed, so
every difference in the numbers is the change's doing.  The original model is never touched.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from . import capture, probe, sites, suppress
from .errors import GradlintError, one_line
from .inputs import ProbeInputs
from .report import Finding, ModelReport, WhatIf
from .rules import check


def run(model: nn.Module, given: ProbeInputs, change: str, graph: capture.Graph, *, target: str, path: str | None,
        line: int | None, seed: int, draws: int, input_source: str, rules=None, context=None,
        data_input: str | None = None, model_output: str | None = None) -> WhatIf:
    """``graph`` is the probe's graph of ``model``: the copy reuses it, so nothing is traced again."""
    from . import init

    memo: dict = {}
    try:
        variant = copy.deepcopy(model, memo)
    except Exception as exc:  # noqa: BLE001 - a model holding an uncopyable object
        return WhatIf(change, False, f"the model cannot be copied ({one_line(exc)})")
    sites.copy_sites(model, memo)  # findings on the copy point at the same lines, so suppressions still apply
    variant_graph = capture.rebind(graph, variant)
    try:
        done = init.apply(variant, change, generator=torch.Generator().manual_seed(seed), graph=variant_graph)
    except GradlintError as exc:
        return WhatIf(change, False, str(exc))
    report = probe.run(variant, given, target=f"{target} --what-if {change}", path=path, line=line, seed=seed,
                       draws=draws, input_source=input_source, graph=variant_graph, data_input=data_input,
                       model_output=model_output).report
    findings, _ = suppress.split(report, check(report, rules, context))
    return WhatIf(change, True, None, done.changed, done.skipped, report, findings)


def status(before: tuple[Finding, ...], after: WhatIf) -> list[tuple[Finding, str]]:
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


def compare_rows(report: ModelReport, variants: tuple[WhatIf, ...]) -> list[tuple[str, list[float | None]]]:
    """The figures shown side by side: (label, [before, after each variant])."""
    reports = [report] + [w.report for w in variants]

    def col(getter):
        return [getter(r.summary) if r is not None else None for r in reports]

    return [
        ("GSC at the input side", col(lambda s: s.gsc_input)),
        ("GSC max", col(lambda s: s.gsc_max)),
        ("explosion rate /layer", col(lambda s: s.explosion_rate)),
        ("min sign diversity", col(lambda s: s.min_sign_diversity)),
        ("min relative spread", col(lambda s: s.min_relative_spread)),
        ("min pre-act std", col(lambda s: s.min_preact_std)),
        ("effective depth", col(lambda s: s.effective_depth)),
        ("mean orthogonality defect", col(lambda s: s.mean_orthogonality_defect)),
    ]
