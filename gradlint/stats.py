"""The spec's metrics as functions of tensors (see docs/metrics.md). Small, exact, no state."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def gsc(grad: torch.Tensor, value_norm: float, output_norm: float) -> float | None:
    """GSC(H) ~= sqrt(sum(G^2) / numel(H)) * ||H||_F / ||Y||_F, from one Gaussian-cotangent backward.

    ``grad`` is G = dY/dH^T u for a standard Gaussian u; E||G||^2 = ||dY/dH||_F^2 (Hutchinson).
    """
    g = grad.detach().double()
    return gsc_from_sum(float((g * g).sum()), g.numel(), value_norm, output_norm)


def gsc_from_sum(grad_sq_sum: float, numel: int, value_norm: float, output_norm: float) -> float | None:
    """The same estimate from sum(G^2) (averaged over draws), for callers that keep no gradient tensor."""
    if output_norm <= 0.0 or not math.isfinite(output_norm):
        return None
    value = math.sqrt(grad_sq_sum / numel) * value_norm / output_norm
    return value if math.isfinite(value) else None


def frobenius(t: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(_working(t.detach())))


# What the error bars' bootstrap resamples: each sample of a batch of up to this many, and in a larger batch
# this many runs of consecutive samples, whose sums are kept instead of each sample's.  A run's sum varies
# as its samples' do together, so a figure's variance is estimated the same way, while the sums kept and
# their resampling cost groups x units, not batch x units, however large the batch.
GROUPS = 64


def groups(batch: int) -> int:
    """The rows the per-sample sums of a batch of ``batch`` samples have."""
    return min(batch, GROUPS)


def by_group(per_sample: torch.Tensor) -> torch.Tensor:
    """Per-sample values (dim 0 is the batch) summed over each run of consecutive samples (``GROUPS``)."""
    batch = per_sample.shape[0]
    n = groups(batch)
    if n == batch:
        return per_sample
    if batch % n == 0:
        return per_sample.reshape(n, batch // n, *per_sample.shape[1:]).sum(1)
    return per_sample.new_zeros((n, *per_sample.shape[1:])).index_add_(0, group_of(torch.arange(batch), batch), per_sample)


def group_of(sample: torch.Tensor, batch: int) -> torch.Tensor:
    """The row (``groups``) each sample index of a batch of ``batch`` lands on."""
    return sample * groups(batch) // batch


def per_sample_sq(t: torch.Tensor) -> torch.Tensor | None:
    """The squared norm of each slice along dim 0 (each sample of a batch-first tensor), float64 on the
    CPU, summed over runs of samples in a batch above ``GROUPS``: what the bootstrap over the batch
    resamples (None for a scalar)."""
    if t.dim() == 0 or t.shape[0] == 0:
        return None
    flat = _working(t.detach()).reshape(t.shape[0], -1)
    return by_group(torch.linalg.vector_norm(flat, dim=1).double().cpu() ** 2)


def _working(t: torch.Tensor) -> torch.Tensor:
    """float32 or float64 as given (half precision upcast): statistics are reduced in the tensor's own
    precision with torch's pairwise summation, so no float64 copy of a large activation is made."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def unit_dims(x: torch.Tensor, channels_first: bool) -> tuple[int, ...]:
    """The dims statistics run over: all but the unit dim (dim 1 after convolutions, else the last)."""
    if x.dim() <= 1:
        return (0,) if x.dim() == 1 else ()
    unit = 1 if channels_first and x.dim() >= 3 else x.dim() - 1
    return tuple(d for d in range(x.dim()) if d != unit)


def _unit_shape(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[int, ...]:
    """The shape that broadcasts a per-unit value against ``x`` (1 on the dims statistics run over)."""
    return tuple(1 if d in dims else s for d, s in enumerate(x.shape))


@dataclass(frozen=True)
class Collapse:
    preact_std: float
    relative_spread: float | None
    sign_diversity: float
    nonlinearity: float | None
    dead_fraction: float | None
    saturated_fraction: float | None
    units: int
    samples: int
    rectified: bool = False      # no negative value at all: the input is already the output of a ReLU
    zero: bool = False           # every value exactly zero: the input carries nothing (a dead branch)
    items: Items | None = None   # the same sums per sample of the batch, for the bootstrap


@dataclass(frozen=True)
class Items:
    """Per sample of the batch (rows; per run of samples above ``GROUPS``) and unit (columns): the values
    behind the statistics (positions of a sample summed): the count of values (the same for every unit: one
    column), the sums of x and x^2 and the counts above and below zero (float32: exact), and, where the
    output y = phi(x) was seen, the sums of y, y^2 and x*y; float64 unless said.  Rows of samples a
    subsample skipped are zero."""
    count: torch.Tensor
    s1: torch.Tensor
    s2: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor
    y1: torch.Tensor | None = None
    y2: torch.Tensor | None = None
    xy: torch.Tensor | None = None


# Statistics per unit need no more samples than this (sign diversity's noise floor is then within 0.005
# of 0.5); beyond it every k-th sample of the batch is used (whole images, or whole rows of one), so an
# early convolution's nonlinearity costs a few passes over 8K positions per channel, not over all.
MAX_SAMPLES = 8192


def _subsample(x: torch.Tensor, y: torch.Tensor | None, channels_first: bool):
    """Views of x and y with at most about MAX_SAMPLES samples per unit, and the layout of the views."""
    if x.dim() < 2:
        return x, y, channels_first
    same = y is not None and y.shape == x.shape
    if channels_first and x.dim() >= 3:
        positions = math.prod(x.shape[2:])
        if x.shape[0] * positions <= MAX_SAMPLES:
            return x, y, channels_first
        pick: list[slice] = [slice(None, None, -(-x.shape[0] // max(1, MAX_SAMPLES // positions)))]
        if positions > MAX_SAMPLES and x.dim() >= 4:  # even one image has too many: every k-th row of it
            pick += [slice(None), slice(None, None, -(-positions // MAX_SAMPLES))]
        pick = tuple(pick)
        return x[pick], y[pick] if same else None, True
    flat = x.reshape(-1, x.shape[-1])                              # (samples, units), rows contiguous
    stride = -(-flat.shape[0] // MAX_SAMPLES)
    if stride <= 1:
        return x, y, channels_first
    return flat[::stride], y.reshape(flat.shape)[::stride] if same else None, False


def collapse(
    x: torch.Tensor,
    y: torch.Tensor | None,
    channels_first: bool,
    relu_family: bool,
    saturation: tuple[float, float] | None,
    per_sample: bool = False,
) -> Collapse | None:
    """Collapsing-domain statistics of a nonlinearity's input ``x`` (and output ``y``), per unit.

    preact_std: per-unit std over samples, mean over units.  relative_spread: that / RMS(x).
    sign_diversity: per-unit min(P, N) / (P + N), mean over units.  nonlinearity: per-unit
    1 - corr(x, phi(x))^2, mean over units with non-zero input variance.  dead_fraction (ReLU family):
    units never positive.  saturated_fraction (tanh-like): units saturated on > 99% of samples.
    Moments are centred (two passes), in the tensor's own precision; None when x is not finite.  At
    most ``MAX_SAMPLES`` samples per unit are used, an even stride over batch and positions.
    ``per_sample``: dim 0 is the batch; keep the sums per sample for the bootstrap (``Items``).
    """
    x = _working(x.detach())
    y = y.detach() if y is not None else None
    if x.dim() == 0:
        x = x.reshape(1)
    zero = not bool(x.any())
    shape = x.shape
    x, y, channels_first = _subsample(x, y, channels_first)
    dims = unit_dims(x, channels_first)
    units = x.numel() // max(1, math.prod(x.shape[d] for d in dims))
    samples = x.numel() // max(1, units)
    mean = x.mean(dims, keepdim=True)
    xc = x - mean
    vx = (xc * xc).mean(dims)
    mean = mean.reshape(-1)
    preact_std = float(vx.sqrt().mean())
    if not math.isfinite(preact_std):
        return None
    rms = math.sqrt(float((vx + mean * mean).mean()))
    relative_spread = preact_std / rms if rms > 0 else None
    pos, neg = _sign_counts(x, dims, samples)
    sd = torch.where(pos + neg > 0, torch.minimum(pos, neg) / (pos + neg).clamp(min=1), torch.zeros_like(pos))
    sign_diversity = float(sd.mean())
    nonlinearity = _nonlinearity(x, xc, vx, y, dims) if y is not None and y.shape == x.shape else None
    dead_fraction = float((pos == 0).double().mean()) if relu_family else None
    saturated_fraction = None
    if saturation is not None:
        lo, hi = saturation
        flat = ((x <= lo) | (x >= hi)).sum(dims).double() / samples
        saturated_fraction = float((flat > 0.99).double().mean())
    rectified = bool(int(neg.sum()) == 0 and int(pos.sum()) > 0)
    items = (_items(x, y if y is not None and y.shape == x.shape else None, channels_first, shape)
             if per_sample and len(shape) >= 2 else None)
    return Collapse(preact_std, relative_spread, sign_diversity, nonlinearity, dead_fraction,
                    saturated_fraction, units, samples, rectified, zero, items)


def _items(x: torch.Tensor, y: torch.Tensor | None, channels_first: bool, shape: torch.Size) -> Items | None:
    """``collapse``'s sums per sample of the batch (dim 0 of the tensor before ``_subsample``, whose
    ``shape`` is given), so that every row of the subsampled view ``x`` (and ``y``) lands on the sample it
    came from."""
    batch = shape[0]
    if channels_first and x.dim() >= 3:
        positions = math.prod(shape[2:])
        stride = 1 if batch * positions <= MAX_SAMPLES else -(-batch // max(1, MAX_SAMPLES // positions))
        index = torch.arange(x.shape[0]) * stride

        def units_last(t):                                  # (picked, positions, units)
            return t.reshape(t.shape[0], t.shape[1], -1).transpose(1, 2).double()
        per, out = units_last(x), units_last(y) if y is not None else None
        sums = [torch.full((per.shape[0], 1), float(per.shape[1]), dtype=torch.float64)]
        sums += [v.sum(1) for v in _moments(per, out)]
        rows = group_of(index, batch)
        return Items(*(torch.zeros(groups(batch), v.shape[1], dtype=v.dtype).index_add_(0, rows, v.cpu())
                       for v in sums))
    flat = x.reshape(-1, x.shape[-1])
    rows = math.prod(shape[:-1])
    stride = 1 if flat.shape[0] == rows else -(-rows // MAX_SAMPLES)
    sample = torch.arange(flat.shape[0]) * stride // max(1, rows // batch)
    d = flat.double()
    parts = [torch.ones(flat.shape[0], 1, dtype=torch.float64, device=d.device)]
    parts += _moments(d, y.reshape(flat.shape).double() if y is not None else None)
    if flat.shape[0] == batch:                      # one row per sample: the rows are the sums
        return Items(*(by_group(v.cpu()) for v in parts))
    rows = group_of(sample, batch)
    return Items(*(torch.zeros(groups(batch), v.shape[1], dtype=v.dtype).index_add_(0, rows, v.cpu()) for v in parts))


def _moments(d: torch.Tensor, out: torch.Tensor | None) -> list[torch.Tensor]:
    """Per element: x, x^2, [x > 0], [x < 0] (in float32, whose sums of counts are exact up to 2^24), and with
    the output y = phi(x): y, y^2, x*y."""
    parts = [d, d * d, (d > 0).float(), (d < 0).float()]
    return parts + ([out, out * out, d * out] if out is not None else [])


def _sign_counts(x: torch.Tensor, dims: tuple[int, ...], samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per unit, the samples above and below zero, from one sign pass: P - N = sum(sign), P + N = sum(|sign|)
    (exact in float below 2^24 samples)."""
    sign = x.sign()
    exact = torch.float32 if samples < 2 ** 24 else torch.float64
    net = sign.sum(dims, dtype=exact).double()
    total = sign.abs_().sum(dims, dtype=exact).double()
    return (total + net) / 2, (total - net) / 2


def _nonlinearity(x: torch.Tensor, xc: torch.Tensor, vx: torch.Tensor, y: torch.Tensor, dims: tuple[int, ...]) -> float | None:
    """1 - corr(x, phi(x))^2 per unit, mean over units with non-zero input variance (None: there are none)."""
    y = _working(y.detach()).to(x.dtype)
    yc = y - y.mean(dims, keepdim=True)
    vy = (yc * yc).mean(dims)
    live = vx > 0
    if not bool(live.any()):
        return None
    # 1 - r^2 is the share of phi(x)'s variance the best affine map of x leaves unexplained.  It is
    # computed from the residual itself, not as 1 - cov^2 / (vx vy): near-linear units have scores of
    # 1e-5, and the subtraction would keep only the last digits of float32 sums (machine-dependent).
    slope = ((xc * yc).mean(dims) / vx.clamp(min=torch.finfo(vx.dtype).tiny)).reshape(_unit_shape(x, dims))
    residual = yc - slope * xc
    unexplained = (residual * residual).mean(dims).double()
    # A unit whose output is constant is exactly affine on its domain: score 0.
    score = torch.where(vy > 0, unexplained / vy.double().clamp(min=1e-300), torch.zeros_like(unexplained))
    return float(score.clamp(0.0, 1.0)[live].mean())


# Above this smaller side the Gram matrix costs more than the probe itself (a 512-wide layer: 8x its
# forward at batch 64), so ||G - c I||_F^2 is estimated from DEFECT_PROBES random orthonormal directions
# (two products of W with a k x m matrix: a quarter of that layer's forward at batch 64).
EXACT_DEFECT_UP_TO = 128
DEFECT_PROBES = 16
_probes: dict[tuple, torch.Tensor] = {}


def orthogonality_defect(weight: torch.Tensor) -> float | None:
    """sqrt(k ||G||_F^2 / tr(G)^2 - 1) for the Gram G (k x k) of the smaller side of W (out, in*kernel).

    The coefficient of variation of the squared singular values: 0 for a scaled orthogonal matrix,
    about sqrt(k / max(out, in)) for an i.i.d. Gaussian one.  No SVD needed.  Computed as
    k ||G - (tr G / k) I||_F^2 / tr(G)^2, which is the same number without cancellation.  For k above
    ``EXACT_DEFECT_UP_TO``, ||G - cI||_F^2 = (k/m) E||(G - cI) Z||_F^2 over Haar-random orthonormal
    Z (k x m, m = ``DEFECT_PROBES``, fixed seed): unbiased, exactly 0 for an orthogonal W, and
    within about sqrt(7 / (m k)) of the exact value for a square Gaussian one (3% at k = 512).
    """
    if weight.dim() < 2:
        return None
    W = weight.detach().reshape(weight.shape[0], -1)
    if W.shape[0] > W.shape[1]:
        W = W.T
    k = W.shape[0]
    trace = frobenius(W) ** 2
    if trace <= 0 or not math.isfinite(trace):
        return None
    c = trace / k
    if k <= EXACT_DEFECT_UP_TO:
        W = W.double()
        dev = W @ W.T
        dev.diagonal().sub_(c)
        value = k * float((dev * dev).sum()) / (trace * trace)
    else:
        compute = _working(W)
        Z = _haar(k, DEFECT_PROBES, compute.dtype, compute.device)
        D = compute @ (compute.T @ Z) - c * Z
        value = k * (k / DEFECT_PROBES) * frobenius(D) ** 2 / (trace * trace)
    return math.sqrt(max(value, 0.0))


def _haar(k: int, m: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """k x m with orthonormal columns, Haar distributed, from a fixed seed (the same every run)."""
    key = (k, m, dtype, str(device))
    if key not in _probes:
        gen = torch.Generator().manual_seed(k)
        q, r = torch.linalg.qr(torch.randn(k, m, generator=gen, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))
        _probes[key] = q.to(device=device, dtype=dtype)
    return _probes[key]


@dataclass(frozen=True)
class Fit:
    rate: float
    r2: float | None
    points: int


def explosion_fit(depths: list[int], gscs: list[float]) -> Fit | None:
    """Least-squares fit of ln GSC against depth; rate = exp(slope), with the fit's R^2.

    Needs at least three points at two or more distinct depths.  R^2 is None when ln GSC is constant
    (a flat profile has no variance to explain).
    """
    pts = [(float(d), math.log(g)) for d, g in zip(depths, gscs) if g is not None and g > 0]
    if len(pts) < 3 or len({d for d, _ in pts}) < 2:
        return None
    n = len(pts)
    mx = sum(d for d, _ in pts) / n
    my = sum(v for _, v in pts) / n
    sxx = sum((d - mx) ** 2 for d, _ in pts)
    sxy = sum((d - mx) * (v - my) for d, v in pts)
    syy = sum((v - my) ** 2 for _, v in pts)
    slope = sxy / sxx
    if syy <= 1e-18 * n:
        return Fit(math.exp(slope), None, n)
    ss_res = sum((v - (my + slope * (d - mx))) ** 2 for d, v in pts)
    return Fit(math.exp(slope), max(0.0, 1.0 - ss_res / syy), n)


@dataclass(frozen=True)
class PathLength:
    mean: float
    p5: int
    p95: int


def effective_depth(outside: int, blocks: list[tuple[int, int, float]]) -> PathLength:
    """Depth-bearing layers on a gradient path, each path weighted by its share of the squared gradient.

    ``outside`` counts the spine layers outside residual blocks; each block is (skip depth, branch
    depth, branch share p): the path goes through the branch with probability p, else through the
    skip.  Blocks are independent, so the length is a shifted Poisson-binomial; its distribution is
    computed exactly by convolution.
    """
    dist = {outside: 1.0}
    for skip, branch, p in blocks:
        p = min(max(p, 0.0), 1.0)
        nxt: dict[int, float] = {}
        for length, q in dist.items():
            nxt[length + skip] = nxt.get(length + skip, 0.0) + q * (1.0 - p)
            nxt[length + branch] = nxt.get(length + branch, 0.0) + q * p
        dist = nxt
    return path_length(dist)


def path_length(dist: dict[int, float]) -> PathLength:
    """Mean and 5th-95th percentile of a distribution of gradient path lengths (length -> probability)."""
    total = sum(dist.values())
    dist = {k: q / total for k, q in dist.items()}
    mean = sum(k * q for k, q in dist.items())
    return PathLength(mean, _quantile(dist, 0.05), _quantile(dist, 0.95))


def _quantile(dist: dict[int, float], level: float) -> int:
    total = 0.0
    keys = sorted(dist)
    for k in keys:
        total += dist[k]
        if total >= level - 1e-12:
            return k
    return keys[-1]


@dataclass(frozen=True)
class Logits:
    """The softmax of class or token logits at initialisation (what "verify the loss at init" checks)."""

    classes: int
    samples: int
    entropy: float            # mean softmax entropy / ln C: 1 is uniform, 0 is one-hot
    init_loss: float          # mean cross-entropy against a uniformly drawn label: ln C for uniform logits
    logit_std: float          # std of the logits over classes, root mean square over samples
    saturated_fraction: float  # samples whose largest probability is at least SATURATED_PROBABILITY


SATURATED_PROBABILITY = 0.99


def logits(z: torch.Tensor) -> Logits | None:
    """Softmax statistics of logits ``z`` (classes on the last dim), in float64.  The expected
    cross-entropy against a label drawn uniformly from the C classes is logsumexp(z) - mean(z), exactly."""
    if z.dim() < 2 or z.shape[-1] < 2:
        return None
    flat = z.detach().reshape(-1, z.shape[-1]).double()
    if not bool(torch.isfinite(flat).all()):
        return None
    c = flat.shape[-1]
    logp = torch.log_softmax(flat, dim=-1)
    p = logp.exp()
    entropy = float((-(p * logp).sum(-1)).mean()) / math.log(c)
    loss = float((torch.logsumexp(flat, -1) - flat.mean(-1)).mean())
    std = math.sqrt(float(flat.var(-1, unbiased=False).mean()))
    saturated = float((p.max(-1).values >= SATURATED_PROBABILITY).double().mean())
    return Logits(c, flat.shape[0], entropy, loss, std, saturated)
