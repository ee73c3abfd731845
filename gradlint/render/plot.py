"""``--plot FILE.png|svg``: the paper's Fig. 1 panels for one or more reports, overlaid.

Three panels side by side, one colour per series:

- A: GSC against depth at the spine points (float inputs, embedding outputs, depth-bearing spine
  layers, residual merges: the points the explosion rate is fitted to), log y-scale.  This is the
  paper's ``GSC(l, 0)`` profile: exponential explosion is a straight line.
- B: pre-activation std against depth at every nonlinearity, log y-scale (it can shrink or grow by
  decades through a deep net).
- C: sign diversity against depth at every nonlinearity, y from 0 to 0.5 (its range).

The x axis is the node's depth: the depth-bearing layers between it and the output (the paper's
compositional depth ``l``, counted from the output).  Our choice, not the paper's: the axis is
inverted so the input is at the left and the output (depth 0) at the right, the order of a forward
pass and of the layer table.  Points are joined in forward order, so two nonlinearities at the same
depth (a gated block) give a vertical step.  Exploding gradients therefore show as a straight line
falling from left to right in panel A.

``trajectories`` draws ``gradlint.track``'s figure instead: each headline figure against the training step.

Matplotlib is optional (``pip install 'gradlint[plot]'``) and imported only when a figure is drawn; the
figure is drawn on a ``Figure`` with the Agg canvas, never through pyplot, so the caller's backend and
figure registry are left alone.  The same call writes byte-identical files.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import GradlintError
from ..report import ModelReport

SUFFIXES = (".png", ".svg")
PANELS = ("gsc", "preact_std", "sign_diversity")
MISSING = "--plot needs matplotlib: pip install 'gradlint[plot]'"
SUPTITLE = "gradlint: GSC, pre-activation std and sign diversity against depth (Philipp et al., Fig. 1)"
XLABEL = "depth (layers to the output)"
DPI = 150
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")
LINESTYLES = ("-", "--", ":", "-.")


class PlotError(GradlintError):
    kind = "input"


def panel_data(report: ModelReport) -> dict[str, list[tuple[float, float]]]:
    """The (depth, value) points of each panel, in forward order: exactly what ``plot()`` draws.

    ``gsc``: the spine points (as counted in ``summary.spine_points``); ``preact_std`` and
    ``sign_diversity``: every nonlinearity.  Points without a depth or a finite value are left out,
    and so are GSC and std values that are not positive (no place on a log axis).
    """
    data: dict[str, list[tuple[float, float]]] = {k: [] for k in PANELS}
    for x in report.layers:
        if x.depth is None:
            continue
        if x.spine_point and _finite(x.gsc) and x.gsc > 0:
            data["gsc"].append((float(x.depth), float(x.gsc)))
        if x.kind == "nonlinearity":
            if _finite(x.preact_std) and x.preact_std > 0:
                data["preact_std"].append((float(x.depth), float(x.preact_std)))
            if _finite(x.sign_diversity):
                data["sign_diversity"].append((float(x.depth), float(x.sign_diversity)))
    return data


def check_destination(path: str | os.PathLike) -> str | None:
    """Why a figure cannot be written to ``path`` (bad suffix, missing folder, no matplotlib), or None.

    The CLI asks before probing anything, so a typo costs no probe time.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        return f"--plot {path}: unsupported file type; use one of {', '.join(SUFFIXES)}"
    if not path.parent.is_dir():
        return f"--plot {path}: directory {path.parent} does not exist"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return MISSING
    return None


def plot(series: Sequence[tuple[str, ModelReport]], path: str | os.PathLike) -> None:
    """Draw the Fig. 1 panels for ``(label, report)`` pairs, overlaid, and write ``path`` (.png or .svg)."""
    problem = check_destination(path)
    if problem:
        raise PlotError(problem)
    path = Path(path)
    series = list(series)
    if not series:
        raise PlotError(f"--plot {path}: no analysed model to plot")
    _draw(series, path, path.suffix.lower()[1:])


def png(series: Sequence[tuple[str, ModelReport]]) -> bytes:
    """The Fig. 1 panels as PNG bytes (a notebook's inline figure)."""
    buffer = io.BytesIO()
    _draw(list(series), buffer, "png")
    return buffer.getvalue()


def _draw(series: list[tuple[str, ModelReport]], destination, fmt: str) -> None:
    """The Fig. 1 panels of ``series``, written to ``destination`` (a path or a binary file) as ``fmt``."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    colours = _colours(matplotlib, len(series))
    labels = [label for label, _ in series]
    ncols = max(1, min(len(series), 150 // (max(len(s) for s in labels) + 8)))
    rows = math.ceil(len(series) / ncols)
    rc = {"svg.hashsalt": "gradlint", "svg.fonttype": "none", "font.size": 10}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(15, 4.6 + 0.22 * rows), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 3, sharex=True)
        titles = ("A   GSC at the spine points", "B   pre-activation std at each nonlinearity",
                  "C   sign diversity at each nonlinearity")
        ylabels = ("GSC (log scale)", "pre-activation std (log scale)", "sign diversity")
        for ax, title, ylabel in zip(axes, titles, ylabels):
            ax.set_title(title, loc="left")
            ax.set_xlabel(XLABEL)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="major", color="0.9", linewidth=0.8)
            ax.set_axisbelow(True)
        handles = []
        for i, (label, report) in enumerate(series):
            style = dict(color=colours[i % len(colours)], marker=MARKERS[i % len(MARKERS)],
                         linestyle=LINESTYLES[(i // len(colours)) % len(LINESTYLES)],
                         markersize=3.5, linewidth=1.3)
            data = panel_data(report)
            for ax, key in zip(axes, PANELS):
                if data[key]:
                    xs, ys = zip(*data[key])
                    ax.plot(xs, ys, clip_on=key != "sign_diversity", **style)
            handles.append(Line2D([], [], label=label, **style))
        axes[0].set_yscale("log")
        axes[1].set_yscale("log")
        axes[2].set_ylim(0, 0.5)
        axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0].invert_xaxis()  # shared: input side left, output right
        fig.suptitle(SUPTITLE)
        fig.legend(handles=handles, loc="outside lower center", ncols=ncols, frameon=False)
        _save(fig, destination, fmt)


def _save(fig, destination, fmt: str) -> None:
    """Write ``fig`` without the metadata that would make two runs' files differ."""
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    try:
        fig.savefig(destination, format=fmt, metadata=metadata)
    except OSError as e:
        raise PlotError(f"--plot {destination}: {e.strerror or e}") from None


TRAJECTORY_TITLES = {"gsc_max": "largest GSC on the spine", "gsc_input": "GSC at the input",
                     "effective_depth": "effective depth", "explosion_rate": "explosion rate (per layer)",
                     "min_sign_diversity": "smallest sign diversity", "min_relative_spread": "smallest relative spread"}
LOG_SCALE = ("gsc_max", "gsc_input")
LEVEL_COLOURS = {"info": "0.55", "warning": "tab:orange", "error": "tab:red"}   # a threshold "GL101 warning"


def trajectories(target: str, series: dict[str, list[tuple[int, float | None]]],
                 thresholds: dict[str, list[tuple[str, float]]], path: str | os.PathLike) -> None:
    """``gradlint.track``'s figure: one panel per figure (``series``: figure -> (step, value)) against the
    training step, each rule threshold on it (``thresholds``: figure -> (label, level)) dashed.  Steps
    whose probe failed (value None) are gaps.  Written to ``path`` (.png or .svg), byte-identical per call."""
    problem = check_destination(path)
    if problem:
        raise PlotError(problem.replace("--plot", "tracker.plot"))
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    cols = 3
    rows = math.ceil(len(series) / cols)
    with matplotlib.rc_context({"svg.hashsalt": "gradlint", "svg.fonttype": "none", "font.size": 10}):
        fig = Figure(figsize=(15, 3.6 * rows + 0.6), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (key, points) in zip(axes, series.items()):
            xs = [s for s, _ in points]
            ys = [v if _finite(v) else float("nan") for _, v in points]
            ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.3, color="tab:blue")
            for label, level in thresholds.get(key, []):
                ax.axhline(level, linestyle="--", linewidth=0.9, label=label,
                           color=LEVEL_COLOURS.get(label.rsplit(" ", 1)[-1], "0.55"))
            if thresholds.get(key):
                ax.legend(loc="best", frameon=False, fontsize=8)
            if key in LOG_SCALE:
                ax.set_yscale("log")
            ax.set_title(TRAJECTORY_TITLES.get(key, key), loc="left")
            ax.set_xlabel("training step")
            ax.grid(True, which="major", color="0.9", linewidth=0.8)
        for ax in axes[len(series):]:
            ax.set_visible(False)
        fig.suptitle(f"gradlint.track: {target}")
        _save(fig, path, path.suffix.lower()[1:])


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _colours(matplotlib, n: int) -> list:
    """tab10 for up to 10 series; tab20 dark shades then light ones for more (linestyles vary past 20)."""
    if n <= 10:
        return list(matplotlib.colormaps["tab10"].colors)
    tab20 = matplotlib.colormaps["tab20"].colors
    return list(tab20[0::2]) + list(tab20[1::2])
