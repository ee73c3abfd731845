"""The scaling sweep: how a model family's figures grow with depth or width, from probes of a few small
sizes, and where the family will cross a rule's threshold (``gradlint file.py:build --sweep depth=6,12,24``).

Pure: it reads the reports of the probed sizes and the rules' thresholds; it never touches torch.

- Along a *depth* axis the compositional depth is fitted as a line in the swept value, and the GSC is
  extrapolated from the largest size with its own explosion rate r, the paper's growth law:
  ``GSC(D) = GSC(D_max) * r ** (depth(D) - depth(D_max))`` (a fit of ln GSC across sizes is steeper:
  small nets have not reached the rate deep ones settle at).  Every other figure is fitted as a line, an
  exponential or a power law in the swept value, whichever fits the probed sizes best (R^2; a line with
  fewer than three sizes).
- Along a *width* axis every figure is fitted as a power law, and the activation scale (RMS at init) of
  each layer type is compared across widths: its exponent ``e`` in ``RMS ~ width ** e``; a scale that
  stays flat (|e| < 0.1) is healthy, one that grows or shrinks with width will be wrong at full size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Figures of the summary the sweep follows, and the ones a depth sweep extrapolates with the GSC law.
FIGURES = ("gsc_input", "gsc_max", "explosion_rate", "effective_depth", "compositional_depth",
           "min_sign_diversity", "min_relative_spread")
GSC = ("gsc_input", "gsc_max")
WIDTH_WORDS = ("width", "dim", "hidden", "channels", "d_model", "n_embd", "embed", "features")
FLAT = 0.1


@dataclass(frozen=True)
class Point:
    """One probed size: the swept value, its summary figures, its verdict and the activation scale
    (RMS, geometric mean over the layers of each type on the data path; ``output``: Y)."""

    value: float
    figures: dict[str, float | None]
    verdict: str
    codes: tuple[str, ...]
    scales: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Fit:
    figure: str
    form: str                 # linear | exponential | power | rate (the GSC law) | none
    a: float | None = None    # linear: a + b x; exponential: exp(a + b x); power: exp(a) x^b
    b: float | None = None
    r2: float | None = None
    predicted: float | None = None


@dataclass(frozen=True)
class Crossing:
    code: str
    level: str                # info | warning | error
    threshold: float
    figure: str
    at: float | None          # the swept value from which the figure is past the threshold (None: not within 100x)
    already: bool = False     # past it at the smallest size probed


@dataclass(frozen=True)
class Scale:
    layer_type: str
    exponent: float
    rms: tuple[float, ...]

    @property
    def flat(self) -> bool:
        return abs(self.exponent) < FLAT


@dataclass(frozen=True)
class Sweep:
    key: str
    axis: str                 # depth | width
    points: tuple[Point, ...]
    predict_at: float | None
    fits: tuple[Fit, ...]
    crossings: tuple[Crossing, ...] = ()
    scales: tuple[Scale, ...] = ()


def axis_of(key: str) -> str:
    return "width" if any(w in key.lower() for w in WIDTH_WORDS) else "depth"


def point(value: float, report, verdict: str, codes) -> Point:
    """A probed size from its report (the layers' RMS grouped by type; Y's RMS as ``output``)."""
    groups: dict[str, list[float]] = {}
    for x in report.layers:
        if x.spine and x.side is None and x.rms and x.kind in ("layer", "norm", "nonlinearity", "embedding", "merge"):
            groups.setdefault(x.op, []).append(x.rms)
    scales = {op: math.exp(sum(map(math.log, v)) / len(v)) for op, v in groups.items()}
    outputs = [x.rms for x in report.layers if x.rms and x.depth == 0 and x.spine]
    if outputs:
        scales["output"] = outputs[-1]
    return Point(value, {k: getattr(report.summary, k) for k in FIGURES}, verdict, tuple(codes), scales)


def analyse(key: str, points: list[Point], predict_at: float | None, thresholds: dict[str, dict[str, float]]) -> Sweep:
    """Fits, the prediction at ``predict_at`` and the threshold crossings.  ``thresholds``: per rule code,
    its configured levels (GL101 on the GSC, GL202 on sign diversity, GL201 on relative spread)."""
    points = sorted(points, key=lambda p: p.value)
    axis = axis_of(key)
    fits = tuple(_fit(f, points, axis, predict_at) for f in FIGURES)
    crossings = _crossings(points, axis, {f.figure: f for f in fits}, thresholds) if axis == "depth" else ()
    return Sweep(key, axis, tuple(points), predict_at, fits, crossings, _scales(points) if axis == "width" else ())


def evaluate(fit: Fit, x: float, points: tuple[Point, ...] | list[Point] = ()) -> float | None:
    if fit.form == "linear":
        return fit.a + fit.b * x
    if fit.form == "exponential":
        return math.exp(fit.a + fit.b * x)
    if fit.form == "power":
        return math.exp(fit.a + fit.b * math.log(x)) if x > 0 else None
    if fit.form == "rate":
        # a: ln GSC at the largest size, b: ln r; depth(x) from the compositional-depth line
        depth = _depth_line(points)
        return math.exp(fit.a + fit.b * (depth(x) - depth(points[-1].value)))
    return None


def _series(points, figure):
    return [(p.value, p.figures.get(figure)) for p in points if p.figures.get(figure) is not None]


def _fit(figure: str, points: list[Point], axis: str, at: float | None) -> Fit:
    pairs = _series(points, figure)
    if not pairs:
        return Fit(figure, "none")
    if axis == "depth" and figure in GSC and len(pairs) == len(points) and all(y > 0 for _, y in pairs):
        rate = points[-1].figures.get("explosion_rate")
        if rate and rate > 0 and len(_series(points, "compositional_depth")) >= 2:
            fit = Fit(figure, "rate", math.log(pairs[-1][1]), math.log(rate))
            return _with_prediction(fit, at, points)
    if len(pairs) < 2:
        return Fit(figure, "none")
    forms = ["power"] if axis == "width" else ["linear", "exponential", "power"]
    if figure == "compositional_depth":
        forms = ["linear"] if axis == "depth" else forms
    candidates = [f for f in (_least_squares(figure, pairs, form) for form in forms) if f is not None]
    if not candidates:
        return Fit(figure, "none")
    # a line unless a curve fits clearly better (three sizes cannot tell a curve from noise by much)
    best = candidates[0]
    for c in candidates[1:]:
        if c.r2 is not None and best.r2 is not None and c.r2 > best.r2 + 0.01 and len(pairs) >= 3:
            best = c
    return _with_prediction(best, at, points)


def _with_prediction(fit: Fit, at: float | None, points) -> Fit:
    if at is None:
        return fit
    return Fit(fit.figure, fit.form, fit.a, fit.b, fit.r2, evaluate(fit, at, points))


def _least_squares(figure: str, pairs, form: str) -> Fit | None:
    if form in ("exponential", "power") and any(y <= 0 for _, y in pairs):
        return None
    if form == "power" and any(x <= 0 for x, _ in pairs):
        return None
    xs = [math.log(x) if form == "power" else x for x, _ in pairs]
    ys = [y if form == "linear" else math.log(y) for _, y in pairs]
    line = _line(xs, ys)
    if line is None:
        return None
    a, b, r2 = line
    return Fit(figure, form, a, b, r2)


def _line(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    syy = sum((y - my) ** 2 for y in ys)
    res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    return a, b, (1 - res / syy) if syy > 0 else 1.0


def _depth_line(points):
    pairs = _series(points, "compositional_depth")
    a, b, _ = _line([x for x, _ in pairs], [y for _, y in pairs])
    return lambda x: a + b * x


def _crossings(points, axis, fits: dict[str, Fit], thresholds) -> tuple[Crossing, ...]:
    """From which swept value each rule's figure is past its levels: GL101 on the largest GSC (grows),
    GL202 on the smallest sign diversity and GL201 on the smallest relative spread (shrink)."""
    out = []
    plan = [("GL101", "gsc_max", True, ("info", "warning", "error")),
            ("GL202", "min_sign_diversity", False, ("warning", "error")),
            ("GL201", "min_relative_spread", False, ("warning", "error"))]
    top = points[-1].value
    for code, figure, grows, levels in plan:
        fit = fits.get(figure)
        opts = thresholds.get(code)
        if fit is None or fit.form == "none" or not opts:
            continue
        for level in levels:
            if level not in opts:
                continue
            t = opts[level]
            past = (lambda v: v is not None and (v >= t if grows else v < t))
            first = points[0].figures.get(figure)
            if past(first):
                out.append(Crossing(code, level, t, figure, points[0].value, already=True))
                continue
            out.append(Crossing(code, level, t, figure, _first_past(fit, points, past, top)))
    return tuple(out)


def _first_past(fit: Fit, points, past, top: float) -> float | None:
    """The smallest swept value (to 1%) at which the fitted figure is past the level, searched from the
    smallest size probed to 100x the largest; None when it is not."""
    lo = points[0].value
    hi = top * 100
    if not past(evaluate(fit, hi, points)):
        return None
    for _ in range(60):
        mid = (lo + hi) / 2
        if past(evaluate(fit, mid, points)):
            hi = mid
        else:
            lo = mid
        if hi - lo <= 0.01 * hi:
            break
    return hi


def _scales(points) -> tuple[Scale, ...]:
    out = []
    types = sorted(set.intersection(*(set(p.scales) for p in points))) if points else []
    for t in types:
        xs = [math.log(p.value) for p in points]
        ys = [math.log(p.scales[t]) for p in points]
        line = _line(xs, ys)
        if line is not None:
            out.append(Scale(t, line[1], tuple(p.scales[t] for p in points)))
    return tuple(out)
