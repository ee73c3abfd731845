"""Error bars: how far each figure could move on another probe batch and other cotangents.

Two sources of noise are estimated separately and combined (docs/metrics.md, "Error bars"):

- the batch: a bootstrap over its samples.  The probe keeps, per sample, each node's squared value and
  squared gradient (summed over the draws) and the output's squared norm, and each nonlinearity's sums
  per sample and unit (``stats.Items``; per run of consecutive samples in a batch above
  ``stats.GROUPS``, and the runs are then what is resampled).  Each of ``RESAMPLES`` resamples draws the batch with
  replacement (the same samples for every node, from the probe's seed) and recomputes every figure from
  the resampled sums.  Cotangents are drawn independently for every element, so for a model whose samples
  do not interact this also covers the cotangent's own noise;
- the draws: with two or more cotangent draws, the figures recomputed from each draw alone; their
  standard deviation over sqrt(draws) is the standard error of the averaged estimate.

A figure's error bar is Student's t quantile (97.5%, batch - 1 degrees of freedom; 1.96 on a large batch)
times the root sum of squares of the two standard errors, plus the
bootstrap's estimate of the figure's bias (the resamples' mean minus the figure): about a 95% interval
around the value a much larger probe of the same batch size would give.  A statistic of a finite batch
can be biased (sign diversity, min(P, N) / (P + N), is lower on 64 samples than on 640 where P = N);
the bias term widens the bar by about that much.  A figure gets no error bar (None) where some value behind it was not kept per sample (a
sequence-first model, whose dim 0 is time; an output whose dim 0 is not the batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

RESAMPLES = 200
# The per-unit statistics (sign diversity, spread, pseudo-linearity) are redrawn on the first this many
# resamples only: their cost is resamples x units per layer, against batch x units for the probe's own
# pass, and with 64 the bar's own noise (its standard error from the resamples' spread, about 9%, and
# the bias term's) changes a 95% interval's coverage by well under a point.
COLLAPSE_RESAMPLES = 64
Z = 1.96


@dataclass(frozen=True)
class Draws:
    """A figure's values under each redraw: ``batch`` (one per resample) and ``draws`` (one per cotangent
    draw); either None where it cannot be redrawn."""

    batch: torch.Tensor | None = None
    draws: torch.Tensor | None = None


def half_width(d: Draws | None, batch: int = 0) -> float | None:
    """The quantile times the combined standard error, plus the bootstrap's estimate of the figure's bias at
    this batch size (None: the batch part cannot be estimated).  Row 0 of ``d.batch`` is the figure on
    the batch as it is; the other rows are the resamples.  With ``batch`` samples the bootstrap's
    variance, biased low by (batch - 1) / batch, is corrected, and Z becomes Student's t with batch - 1
    degrees of freedom: a bar from 8 samples is about 1.3x wider than the normal approximation's."""
    return half_widths([d], batch)[0]


def half_widths(draws: list[Draws | None], batch: int = 0) -> list[float | None]:
    """``half_width`` of many figures at once.  Non-finite redraws are left out of the spread and the mean.
    Figures with as many redraws are stacked, so each group costs a few tensor operations, not a few per
    figure."""
    out: list[float | None] = [None] * len(draws)
    groups: dict[tuple, list[int]] = {}
    for j, d in enumerate(draws):
        if d is not None and d.batch is not None and d.batch.numel() >= 3:
            spread = d.draws.numel() if d.draws is not None and d.draws.numel() > 1 else 0
            groups.setdefault((d.batch.numel(), spread), []).append(j)
    for (_, spread), js in groups.items():
        rows = torch.stack([draws[j].batch for j in js]).double()
        var, mean, ok = _moments(rows[:, 1:])
        var = var * (batch / (batch - 1) if batch > 1 else 1.0)
        if spread:
            draw_var, _, two = _moments(torch.stack([draws[j].draws for j in js]).double())
            var = var + torch.where(two, draw_var, math.nan) / spread
        width = quantile(batch - 1) * var.sqrt() + (mean - rows[:, 0]).abs()
        ok = ok & torch.isfinite(rows[:, 0]) & torch.isfinite(width)
        for j, w, good in zip(js, width.tolist(), ok.tolist()):
            out[j] = w if good else None
    return out


def _moments(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row, over its finite values: the unbiased variance, the mean, and whether there were two or more."""
    finite = torch.isfinite(rows)
    n = finite.sum(1)
    mean = torch.where(finite, rows, 0.0).sum(1) / n.clamp(min=1)
    dev = torch.where(finite, rows - mean[:, None], 0.0)
    return (dev * dev).sum(1) / (n - 1).clamp(min=1), mean, n >= 2


def quantile(dof: int) -> float:
    """Student's t 97.5% quantile for ``dof`` degrees of freedom (Z where ``dof`` < 1): the Cornish-Fisher
    expansion to 1/dof^2 (2.357 for 7 against the exact 2.365, 3.06 for 3 against 3.18, 1.998 for 63
    as exact; below 3 it is too narrow)."""
    if dof < 1:
        return Z
    return Z + (Z ** 3 + Z) / (4 * dof) + (5 * Z ** 5 + 16 * Z ** 3 + 3 * Z) / (96 * dof ** 2)


class Bootstrap:
    """``RESAMPLES`` resamples of a batch, as counts: row r says how often each sample is drawn.  Row 0
    is the batch itself (every sample once), so every redrawn figure's row 0 is the figure."""

    def __init__(self, batch: int, seed: int, resamples: int = RESAMPLES):
        g = torch.Generator().manual_seed(seed)
        picks = torch.randint(0, batch, (resamples, batch), generator=g)
        self.batch = batch
        self.counts = torch.cat([torch.ones(1, batch, dtype=torch.float64), torch.zeros(
            resamples, batch, dtype=torch.float64).scatter_add_(1, picks, torch.ones(resamples, batch, dtype=torch.float64))])
        self._counts32 = self.counts.float()        # for sums of counts, which float32 holds exactly

    def sums(self, per_sample: torch.Tensor, resamples: int | None = None) -> torch.Tensor:
        """Each resample's sum of a per-sample quantity (batch,) or (batch, units); row 0 is the batch's own
        sum, then ``resamples`` resamples (all of them by default)."""
        counts = self.counts if per_sample.dtype == torch.float64 else self._counts32
        return (counts if resamples is None else counts[:resamples + 1]) @ per_sample


def gsc(boot: Bootstrap, grad_ps: list, draws: int, value_ps, numel: int, y_ps, draw_sums: list,
        norm: float, y_norm: float) -> Draws | None:
    """A node's GSC redrawn.  ``grad_ps``: its squared gradient per sample, one tensor per hook call
    (summed over draws); ``draw_sums``: its squared gradient per draw."""
    return gsc_all(boot, {"": (grad_ps, value_ps, numel, draw_sums, norm)}, draws, y_ps, y_norm).get("")


def gsc_all(boot: Bootstrap, nodes: dict, draws: int, y_ps, y_norm: float) -> dict[str, Draws | None]:
    """``gsc`` for every node at once (``nodes``: node -> (grad_ps, value_ps, numel, draw_sums, norm)):
    the per-sample sums of all nodes side by side, so the resampling is two matrix products."""
    out: dict[str, Draws | None] = {}
    whole = []
    for k, (grad_ps, value_ps, numel, draw_sums, norm) in nodes.items():
        if not grad_ps or y_norm <= 0 or numel == 0:
            out[k] = None
            continue
        per_draw = None
        if draws > 1 and len(draw_sums) == draws:
            per_draw = (torch.tensor(draw_sums, dtype=torch.float64) / numel).sqrt() * norm / y_norm
        out[k] = Draws(None, per_draw)
        if all(g is not None for g in grad_ps) and value_ps is not None and y_ps is not None:
            whole.append((k, sum(grad_ps) / draws / numel, value_ps))
    if whole:
        grads = boot.sums(torch.stack([g for _, g, _ in whole], 1))
        values = boot.sums(torch.stack([v for _, _, v in whole], 1))
        batch = grads.sqrt() * values.sqrt() / boot.sums(y_ps).sqrt().unsqueeze(1)
        for j, (k, _, _) in enumerate(whole):
            out[k] = Draws(batch[:, j], out[k].draws)
    return out


@dataclass(frozen=True)
class CollapseDraws:
    sign_diversity: Draws
    relative_spread: Draws
    nonlinearity: Draws | None = None


def collapse(boot: Bootstrap, items) -> CollapseDraws | None:
    """A nonlinearity's sign diversity, relative spread and pseudo-linearity score, resampled (its sums per
    sample and unit)."""
    return collapse_all(boot, {"": items}).get("")


# Most values (resamples x layers x units) one batched pass over several layers' sums holds at a time:
# about half a megabyte a tensor, so that the twenty-odd operations on them stay in cache.
BATCHED = 2 ** 16


def collapse_all(boot: Bootstrap, items: dict) -> dict[str, CollapseDraws | None]:
    """``collapse`` for every nonlinearity at once (``items``: node -> its ``stats.Items``): layers with
    the same number of units (and the same sums kept) are stacked side by side, so the resampling and
    the figures are a few operations on (resamples, layers, units) tensors instead of a few per layer."""
    out: dict[str, CollapseDraws | None] = {}
    groups: dict[tuple, list] = {}
    for k, it in items.items():
        if it is None or it.count.shape[0] != boot.batch:
            out[k] = None
        else:
            groups.setdefault((it.s1.shape[1], it.xy is not None), []).append(k)
    for (units, _), keys in groups.items():
        step = max(1, BATCHED // ((COLLAPSE_RESAMPLES + 1) * max(1, units)))
        for lo in range(0, len(keys), step):
            part = keys[lo:lo + step]
            draws = _collapse_stacked(boot, [items[k] for k in part])
            out.update({k: CollapseDraws(*(None if d is None else Draws(d[:, j]) for d in draws))
                        for j, k in enumerate(part)})
    return out


def _collapse_stacked(boot: Bootstrap, group: list) -> tuple:
    """Sign diversity, relative spread and pseudo-linearity score (or None) of layers with equally many
    units, each (resamples + 1, layers)."""
    def sums(field: str) -> torch.Tensor:
        stacked = torch.stack([getattr(it, field) for it in group], 1)          # (batch, layers, units)
        return boot.sums(stacked.reshape(boot.batch, -1), COLLAPSE_RESAMPLES).reshape(-1, *stacked.shape[1:])
    n, s1, s2 = sums("count").clamp_(min=1), sums("s1"), sums("s2")        # n: (resamples, layers, 1)
    pos, neg = sums("pos"), sums("neg")                                     # float32, exact
    mean = s1 / n
    var = (s2 / n - mean * mean).clamp_(min=0)
    std = var.sqrt().mean(-1)
    rms = (s2 / n).mean(-1).sqrt()
    spread = torch.where(rms > 0, std / rms.clamp(min=1e-300), torch.full_like(rms, float("nan")))
    both = pos + neg
    sd = torch.where(both > 0, torch.minimum(pos, neg) / both.clamp(min=1), torch.zeros_like(pos)).mean(-1).double()
    score = _nonlinearity(sums, n, mean, var) if group[0].xy is not None else None
    return sd, spread, score


# A unit's variance below this fraction of its mean square is rounding, not spread (the figure's own
# test is an exact zero, which sums of resampled float64 moments do not reproduce).
ROUNDING = 1e-10


def _nonlinearity(sums, n, mean, var) -> torch.Tensor:
    """1 - corr(x, phi(x))^2 per unit, mean over units whose input varies, resampled: from the sums of x,
    y, x^2, y^2 and x*y per sample and unit (``stats.Items``)."""
    y1, y2, xy = sums("y1") / n, sums("y2") / n, sums("xy") / n
    vy = (y2 - y1 * y1).clamp_(min=0)
    cov = xy - mean * y1
    live = var > ROUNDING * (var + mean * mean)
    varies = vy > ROUNDING * y2
    unexplained = (vy - cov * cov / var.clamp(min=1e-300)).clamp_(min=0)
    score = torch.where(varies, unexplained / vy.clamp(min=1e-300), torch.zeros_like(vy)).clamp_(0, 1)
    units = live.sum(-1)
    return torch.where(units > 0, (score * live).sum(-1) / units.clamp(min=1), torch.full_like(vy[..., 0], math.nan))


def minimum(draws: list[Draws | None]) -> Draws | None:
    """The smallest of several figures, redrawn (the same resamples for all): None if any is missing."""
    if not draws or any(d is None or d.batch is None for d in draws):
        return None
    return Draws(torch.stack([d.batch for d in draws]).nan_to_num(nan=math.inf).min(0).values)


def maximum(draws: list[Draws | None]) -> Draws | None:
    if not draws or any(d is None or d.batch is None for d in draws):
        return None
    batch = torch.stack([d.batch for d in draws]).max(0).values
    per = [d.draws for d in draws]
    return Draws(batch, torch.stack(per).max(0).values if all(p is not None for p in per) else None)


def rate(depths: list[int], draws: list[Draws | None]) -> Draws | None:
    """The explosion rate (exp of the least-squares slope of ln GSC against depth), redrawn."""
    if len(depths) < 3 or len(set(depths)) < 2 or any(d is None or d.batch is None for d in draws):
        return None
    d = torch.tensor(depths, dtype=torch.float64)
    d = d - d.mean()

    def slope(values: torch.Tensor) -> torch.Tensor:        # (points, redraws)
        logs = values.clamp(min=1e-300).log()
        return ((logs - logs.mean(0)) * d[:, None]).sum(0) / float((d * d).sum())

    batch = slope(torch.stack([x.batch for x in draws])).exp()
    per = [x.draws for x in draws]
    return Draws(batch, slope(torch.stack(per)).exp() if all(p is not None for p in per) else None)
