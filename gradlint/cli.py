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
@click.option("--debug", is_flag=True, help="Show tracebacks for failures.")
def check(targets, output_format, fail_on, exit_zero, input_shape, batch_size, seed, draws, device, dtype, debug):
    """Analyse every model in TARGETS (file.py, file.py:NAME or package.module:NAME)."""
    opts = ProbeOptions(batch_size=batch_size, seed=seed, draws=draws, input_shape=input_shape,
                        device=device, dtype=dtype)
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
    sys.exit(exit_code(results, fail_on, exit_zero))


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
