"""Command line: ``gradlint [check] PATH[:NAME] ...``.  A thin layer over ``gradlint.api``."""

from __future__ import annotations

import os
import sys
import traceback

import click

from . import __version__
from .api import ProbeOptions, analyse
from .errors import one_line
from .load import resolve
from .report import SEVERITY_RANK, AnalysisError, TargetResult
from .whatif import CHANGES


class _DefaultCheck(click.Group):
    """``gradlint PATH`` means ``gradlint check PATH``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["check", *args]
        return super().parse_args(ctx, args)


def _shape(ctx, param, value):
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(",") if v.strip())
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise click.BadParameter(f"'{value}' is not a shape; give positive integers without the batch, e.g. 3,32,32")
    return shape


@click.group(cls=_DefaultCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradlint")
def main() -> None:
    """gradlint: lint PyTorch model architectures for exploding gradients, collapsing domains and
    non-orthogonal initial states (Philipp, Song & Carbonell)."""


@main.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default="error", show_default=True,
              help="Exit 1 when a finding at or above this severity is found.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings are found (2 still means failure).")
@click.option("--input-shape", callback=_shape, metavar="D1,D2,...", help="Probe input shape without the batch.")
@click.option("--batch-size", type=click.IntRange(min=2), help="Probe batch size [default: 64; fewer for images].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for inputs, dropout and cotangents.")
@click.option("--draws", type=click.IntRange(min=1), default=1, show_default=True,
              help="Gaussian cotangents averaged in the GSC estimate.")
@click.option("--device", help="Move the model to this device before probing (e.g. cuda).")
@click.option("--dtype", type=click.Choice(["float32", "float64", "float16", "bfloat16"]), help="Probe dtype.")
@click.option("--what-if", "what_if", multiple=True, type=click.Choice(CHANGES),
              help="Also probe a copy of each model with this change to its initial weights (gradlint.init) and "
                   "show the figures and findings before and after. Repeat for several.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True),
              help="Draw the paper's Fig. 1 panels (GSC, pre-activation std, sign diversity against depth) for "
                   "every model and what-if variant to FILE.png or FILE.svg (needs gradlint[plot]).")
@click.option("--debug", is_flag=True, help="Show tracebacks for failures.")
def check(targets, output_format, fail_on, exit_zero, input_shape, batch_size, seed, draws, device, dtype, what_if,
          plot_path, debug):
    """Analyse every model in TARGETS (file.py, file.py:NAME or package.module:NAME)."""
    if plot_path:
        from .render.plot import check_destination

        problem = check_destination(plot_path)
        if problem:
            click.echo(f"gradlint: error: {problem}", err=True)
            sys.exit(2)
    opts = ProbeOptions(batch_size=batch_size, seed=seed, draws=draws, input_shape=input_shape,
                        device=device, dtype=dtype, what_if=tuple(what_if))
    results: list[TargetResult] = []
    for spec in targets:
        try:
            sources = resolve(spec, seed)
        except Exception as exc:  # noqa: BLE001 - never a traceback without --debug
            results.append(_internal(spec, exc))
            continue
        for source in sources:
            try:
                results.append(analyse(source, opts))
            except Exception as exc:  # noqa: BLE001
                results.append(_internal(getattr(source, "target", spec), exc))
    for r in results:
        if not r.ok:
            click.echo(f"gradlint: error: {r.error.message}", err=True)
            if debug and r.traceback:
                click.echo(r.traceback, err=True)
    if output_format == "json":
        from .render.json import render

        sys.stdout.write(render(results))
    else:
        from rich.console import Console

        from .render.text import render

        console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120,
                          no_color="NO_COLOR" in os.environ)
        render(results, console)
    sys.stdout.flush()
    code = exit_code(results, fail_on, exit_zero)
    if plot_path:
        code = max(code, _plot(results, plot_path, debug))
    sys.exit(code)


def _plot(results: list[TargetResult], path: str, debug: bool) -> int:
    """Draw every analysed model and its what-if variants; 2 if the figure could not be written."""
    from .render.plot import plot

    series = []
    for r in results:
        if r.ok:
            series.append((r.target, r.report))
            series += [(f"{r.target} --what-if {w.change}", w.report) for w in r.what_if if w.applied]
    if not series:
        return 0
    try:
        plot(series, path)
    except Exception as exc:  # noqa: BLE001 - a plotting failure must not hide the report already printed
        click.echo(f"gradlint: error: could not write the plot {path}: {one_line(exc)}", err=True)
        if debug:
            click.echo(traceback.format_exc(), err=True)
        return 2
    click.echo(f"gradlint: wrote {path}", err=True)
    return 0


def _internal(target: str, exc: Exception) -> TargetResult:
    return TargetResult(target=target, traceback=traceback.format_exc(), error=AnalysisError(
        f"{target}: internal error: {one_line(exc)}; please report it (--debug shows the traceback)",
        "internal"))


def exit_code(results: list[TargetResult], fail_on: str, exit_zero: bool) -> int:
    if any(not r.ok for r in results):
        return 2
    if exit_zero:
        return 0
    bar = SEVERITY_RANK[fail_on]
    return 1 if any(SEVERITY_RANK[f.severity] >= bar for r in results for f in r.findings) else 0
