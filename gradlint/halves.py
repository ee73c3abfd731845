"""Error bars of models whose samples interact: what the batch size itself does to the figures.

In a model with BatchNorm in training mode (the probe's mode) every sample's output depends on the
batch's statistics, so the figures are functions of the batch size and not only noisy estimates: the
batch-ReLU MLP's GSC is about 1.2e4 at 64 samples and 5e3 at 640.  A bootstrap over one batch cannot see
that.  With a shift that goes as 1/B, f(B) - f(infinity) is about f(B/2) - f(B), so each headline
figure's error bar is widened by |f(B/2) - f(B)|, f(B/2) measured on the first half of the batch as a
batch of its own: one more probe of half the size that measures only what the summary's figures need
(no error bars of its own; docs/metrics.md, "Error bars").  Only the summary's figures are widened;
per-layer bars stay the bootstrap's.
"""

from __future__ import annotations

import dataclasses

import torch.nn as nn

from . import probe
from .capture import tiers
from .assemble import Subject
from .inputs import ProbeInputs
from .settings import Probe

FIGURES = ("gsc_input", "gsc_max", "explosion_rate", "effective_depth", "min_sign_diversity", "min_relative_spread")
SMALLEST = 8        # a batch below this is not halved: fewer than 4 samples per BatchNorm is no batch statistic


def couples_samples(model: nn.Module) -> bool:
    """Whether the probe's forward mixes samples: a BatchNorm (in training mode during the probe)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def widen(probed: probe.Probed, model: nn.Module, given: ProbeInputs, subject: Subject,
          settings: Probe) -> probe.Probed:
    """``probed`` with its summary's error bars widened by the batch size's own effect, for a model whose
    samples interact; anything else unchanged."""
    report = probed.report
    s, batch = report.summary, report.probe.batch_size
    if (not couples_samples(model) or not batch or batch < SMALLEST
            or all(getattr(s, k + "_error") is None for k in FIGURES)):
        return probed
    facts = given.facts(model, settings.data_input or given.data_input)
    rows = given.first(batch // 2)
    graph = tiers.at_batch(model, rows, facts, probed.graph)
    halved = probe.run(model, rows, subject, settings, graph, summary_only=True).report.summary
    widened = {}
    for k in FIGURES:
        value, error = getattr(s, k), getattr(s, k + "_error")
        at_half = getattr(halved, k)
        if value is None or error is None or at_half is None:
            continue
        widened[k + "_error"] = error + abs(at_half - value)
    return dataclasses.replace(probed, report=dataclasses.replace(report, summary=dataclasses.replace(s, **widened)))
