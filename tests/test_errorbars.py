"""Error bars (docs/metrics.md, "Error bars"): each redraw is the figure of a resampled batch, computed
independently here by running the model on the resampled batch; the bars shrink with the batch, cover
what more probes measure, and reach the findings and the text report."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint import errorbars, paper, probe, stats
from gradlint.assemble import Subject
from gradlint.halves import FIGURES
from gradlint.inputs import ProbeInputs
from gradlint.settings import Probe
from gradlint.rules import check

pytestmark = pytest.mark.probe


def _resampled(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    return x.repeat_interleave(counts.long(), dim=0)


def test_a_redrawn_gsc_is_the_gsc_of_the_resampled_batch():
    """GSC_r from per-sample sums equals the GSC measured by autograd on the batch the resample draws
    (each sample repeated as often as it is drawn, with its own cotangent): exact for a net whose samples
    do not interact."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(16, 6, requires_grad=True)
    y = net(x)
    u = torch.randn_like(y)
    (g,) = torch.autograd.grad((y * u).sum(), x)
    boot = errorbars.Bootstrap(16, seed=5, resamples=4)
    redrawn = errorbars.gsc(boot, [stats.per_sample_sq(g)], 1, stats.per_sample_sq(x), x.numel(),
                            stats.per_sample_sq(y), [float((g * g).sum())], stats.frobenius(x), stats.frobenius(y))
    for r in range(5):
        xr = _resampled(x.detach(), boot.counts[r]).requires_grad_(True)
        yr = net(xr)
        (gr,) = torch.autograd.grad((yr * _resampled(u, boot.counts[r])).sum(), xr)
        direct = stats.gsc(gr, stats.frobenius(xr), stats.frobenius(yr))
        assert float(redrawn.batch[r]) == pytest.approx(direct, rel=1e-5)


@pytest.mark.parametrize("channels_first, shape", [(False, (32, 5)), (False, (32, 7, 5)), (True, (32, 5, 3, 3))])
def test_redrawn_collapse_statistics_are_those_of_the_resampled_batch(channels_first, shape):
    x = torch.randn(*shape) + 0.3
    c = stats.collapse(x, torch.tanh(2 * x), channels_first, False, None, per_sample=True)
    boot = errorbars.Bootstrap(shape[0], seed=1, resamples=3)
    redrawn = errorbars.collapse(boot, c.items)
    for r in range(4):
        xr = _resampled(x, boot.counts[r])
        direct = stats.collapse(xr, torch.tanh(2 * xr), channels_first, False, None)
        assert float(redrawn.sign_diversity.batch[r]) == pytest.approx(direct.sign_diversity, abs=1e-7)
        assert float(redrawn.relative_spread.batch[r]) == pytest.approx(direct.relative_spread, rel=1e-5)
        assert 0.01 < direct.nonlinearity < 0.5
        assert float(redrawn.nonlinearity.batch[r]) == pytest.approx(direct.nonlinearity, rel=1e-4)


@pytest.mark.parametrize("channels_first, shape", [(False, (192, 5)), (False, (100, 7, 5)), (True, (130, 5, 3, 3))])
def test_a_large_batch_is_resampled_by_runs_of_samples(channels_first, shape):
    """Above stats.GROUPS samples the sums are kept per run of consecutive samples, and a redraw is the
    figure of the batch in which each run is repeated as often as it is drawn (runs of unequal length
    where the batch does not divide)."""
    x = torch.randn(*shape) + 0.3
    c = stats.collapse(x, torch.tanh(2 * x), channels_first, False, None, per_sample=True)
    assert c.items.s1.shape[0] == stats.GROUPS
    boot = errorbars.Bootstrap(stats.GROUPS, seed=1, resamples=3)
    redrawn = errorbars.collapse(boot, c.items)
    runs = stats.group_of(torch.arange(shape[0]), shape[0])
    for r in range(4):
        xr = _resampled(x, boot.counts[r][runs])
        direct = stats.collapse(xr, torch.tanh(2 * xr), channels_first, False, None)
        assert float(redrawn.sign_diversity.batch[r]) == pytest.approx(direct.sign_diversity, abs=1e-7)
        assert float(redrawn.relative_spread.batch[r]) == pytest.approx(direct.relative_spread, rel=1e-5)
        assert float(redrawn.nonlinearity.batch[r]) == pytest.approx(direct.nonlinearity, rel=1e-4)
    norms = stats.per_sample_sq(x)
    assert norms.shape == (stats.GROUPS,)
    assert float(norms.sum()) == pytest.approx(float((x.double() ** 2).sum()), rel=1e-6)


def test_a_pseudo_linear_score_near_zero_is_redrawn_without_losing_its_digits():
    """tanh on a domain of width 0.01 is linear to 1e-5: the resampled moments (float64 sums of float32
    values) still give that score, not rounding noise."""
    x = torch.randn(64, 16) * 0.01 + 0.002
    c = stats.collapse(x, torch.tanh(x), False, False, None, per_sample=True)
    boot = errorbars.Bootstrap(64, seed=2, resamples=3)
    redrawn = errorbars.collapse(boot, c.items).nonlinearity
    for r in range(4):
        xr = _resampled(x, boot.counts[r])
        direct = stats.collapse(xr, torch.tanh(xr), False, False, None).nonlinearity
        assert 0 < direct < 1e-4
        assert float(redrawn.batch[r]) == pytest.approx(direct, rel=0.02)


def test_the_effective_depth_mean_is_the_mean_of_its_distribution():
    report = gradlint.lint(paper.ResNet(0.5, 6, 16, 4), (torch.randn(32, 16),)).report
    s = report.summary
    assert 0 < s.effective_depth < s.compositional_depth
    # row 0 of the redraws is the batch itself, so a bar of zero width would mean the shares were not redrawn
    assert s.effective_depth_error > 0


def _summary(model, batch: int, seed: int, dim: int = 32):
    x = torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed))
    return gradlint.lint(model, (x,), seed=seed).report.summary


def test_error_bars_shrink_with_the_batch_and_cover_the_mean_of_more_probes():
    torch.manual_seed(0)
    model = paper.mlp("tanh", 12, 32, 4)
    small, large = _summary(model, 64, 0), _summary(model, 1024, 0)
    assert 0.15 < large.gsc_input_error / small.gsc_input_error < 0.45          # about 1/sqrt(16)
    more = [_summary(model, 64, s) for s in range(1, 11)]
    for k in ("gsc_input", "gsc_max", "explosion_rate", "min_sign_diversity", "min_relative_spread"):
        mean = sum(getattr(m, k) for m in more) / len(more)
        assert abs(mean - getattr(small, k)) <= getattr(small, k + "_error"), k


def test_a_finding_within_its_error_bar_of_the_threshold_says_so():
    report = gradlint.lint(paper.mlp("relu", 50, 100, 10), (torch.randn(64, 100),)).report
    (gl202,) = [f for f in check(report) if f.code == "GL202"]
    assert gl202.value_error is not None and "error bar" not in gl202.message
    worst = report.layer(gl202.layer)
    near = dataclasses.replace(worst, sign_diversity_error=abs(gl202.threshold - gl202.value) * 1.5)
    moved = dataclasses.replace(report, layers=tuple(near if x is worst else x for x in report.layers))
    (again,) = [f for f in check(moved) if f.code == "GL202"]
    assert "lies within its error bar of the threshold" in again.message
    assert again.severity == gl202.severity                 # the verdict stays; the message qualifies it


def test_the_text_report_shows_figures_with_their_error_bars(request):
    run = request.getfixturevalue("gradlint")("examples/deep_mlp.py")
    assert "GSC input" in run.stdout and " +/- " in run.stdout.split("GSC input", 1)[1].split("\n", 1)[0]


def test_a_sequence_first_model_has_no_error_bars_rather_than_wrong_ones():
    lstm = nn.LSTM(8, 8, 2)          # (time, batch, features): dim 0 is not the batch
    s = gradlint.lint(lstm, (torch.randn(12, 16, 8),)).report.summary
    assert s.gsc_input is not None and s.gsc_input_error is None


def test_a_batchnorm_net_s_bars_add_what_halving_the_batch_does():
    """Samples interact through BatchNorm, so the figure depends on the batch size: the summary's bar is the
    bootstrap's plus |figure on the first half of the batch - figure|, the half linted as a batch of its own."""
    torch.manual_seed(0)
    model = paper.mlp("batch-relu", 12, 32, 4)
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(3))
    s = gradlint.lint(model, (x,)).report.summary
    half = gradlint.lint(model, (x[:32],)).report.summary
    bootstrap_only = probe.run(model, ProbeInputs.of((x,)), Subject("model"), Probe().resolved()).report.summary
    for k in halves_figures():
        shift = abs(getattr(half, k) - getattr(s, k))
        assert getattr(s, k + "_error") == pytest.approx(getattr(bootstrap_only, k + "_error") + shift, rel=1e-6), k
    assert s.gsc_input_error > 1.2 * bootstrap_only.gsc_input_error     # the batch size moves this net's GSC


def halves_figures():
    return [k for k in FIGURES if k != "min_relative_spread"]       # BatchNorm's spread is 1 by construction


def test_a_net_whose_samples_do_not_interact_is_not_probed_again(monkeypatch):
    calls = []
    real = probe.run
    monkeypatch.setattr(probe, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    gradlint.lint(paper.mlp("tanh", 6, 16, 4), (torch.randn(64, 16),))
    assert len(calls) == 1
    gradlint.lint(paper.mlp("batch-tanh", 6, 16, 4), (torch.randn(64, 16),))
    assert len(calls) == 3                                    # the batch, then its first half
    gradlint.lint(paper.mlp("batch-tanh", 6, 16, 4), (torch.randn(64, 16),), what_if=("orthogonal",))
    assert len(calls) == 7                                    # ... and so for the what-if copy


@pytest.mark.parametrize("dof, exact", [(3, 3.182), (7, 2.365), (15, 2.131), (63, 1.998), (10**6, 1.960)])
def test_the_bar_s_quantile_is_student_s_t(dof, exact):
    """Student's t 97.5% quantiles from a table: the bar of a batch of 8 is wider than 1.96 sigma."""
    assert errorbars.quantile(dof) == pytest.approx(exact, abs=0.13 if dof == 3 else 0.01)
