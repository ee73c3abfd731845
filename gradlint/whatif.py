"""``--what-if``: probe a copy of the model after one change to its initial weights, and compare.

The change comes from ``gradlint.init``; the copy is probed on the same inputs with the same seed, so
every difference in the numbers is the change's doing.  The original model is never touched.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from . import capture, halves, probe, sites
from .assemble import Subject
from .errors import GradlintError, one_line
from .inputs import ProbeInputs
from .report import WhatIf
from .rules import judge
from .settings import Probe


def run(model: nn.Module, given: ProbeInputs, change: str, graph: capture.Graph, subject: Subject, settings: Probe,
        rules=None, context=None) -> WhatIf:
    """``graph`` is the probe's graph of ``model``: the copy reuses it, so nothing is traced again.  The
    copy is judged as the model is (``rules.judge``)."""
    from . import init

    memo: dict = {}
    try:
        variant = copy.deepcopy(model, memo)
    except Exception as exc:  # noqa: BLE001 - a model holding an uncopyable object
        return WhatIf(change, False, f"the model cannot be copied ({one_line(exc)})")
    sites.copy_sites(model, memo)  # findings on the copy point at the same lines, so suppressions still apply
    variant_graph = capture.rebind(graph, variant)
    try:
        done = init.apply(variant, change, generator=torch.Generator().manual_seed(settings.seed), graph=variant_graph)
        named = subject.variant(change)
        report = halves.widen(probe.run(variant, given, named, settings, graph=variant_graph), variant, given, named,
                              settings).report
    except GradlintError as exc:  # the change does not apply, or the copy cannot be probed
        return WhatIf(change, False, str(exc))
    findings, _ = judge(report, rules, context)
    return WhatIf(change, True, None, done.changed, done.skipped, report, findings)
