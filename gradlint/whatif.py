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
from .report import WhatIf
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
