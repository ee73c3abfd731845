"""Command line: ``gradlint [check] PATH[:NAME] ...``.  A thin layer over ``gradlint.api``."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import click

from . import __version__
from .config import Overrides, Probe, Resolver, Selection, Settings, parse_codes
from .errors import GradlintError, one_line
from .paths import split_target
from .report import SEVERITY_RANK, AnalysisError, TargetResult
from .changes import CHANGES


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
# Options a configuration can also set default to None: the command line beats the file, the file the default.
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), help="Output format.  [default: text]")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]),
              help="Exit 1 when a finding at or above this severity is found.  [default: error]")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings are found (2 still means failure).")
@click.option("--input-shape", callback=_shape, metavar="D1,D2,...", help="Probe input shape without the batch.")
@click.option("--batch-size", type=click.IntRange(min=2), help="Probe batch size [default: 64; fewer for images].")
@click.option("--seed", type=int, help="Seed for inputs, dropout and cotangents.  [default: 0]")
@click.option("--draws", type=click.IntRange(min=1),
              help="Gaussian cotangents averaged in the GSC estimate.  [default: 1]")
@click.option("--device", help="Move the model to this device before probing (e.g. cuda).")
@click.option("--dtype", type=click.Choice(["float32", "float64", "float16", "bfloat16"]), help="Probe dtype.")
@click.option("--what-if", "what_if", multiple=True, type=click.Choice(list(CHANGES)),
              help="Also probe a copy of each model with this change to its initial weights (gradlint.init) and "
                   "show the figures and findings before and after. Repeat for several.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True),
              help="Draw the paper's Fig. 1 panels (GSC, pre-activation std, sign diversity against depth) for "
                   "every model and what-if variant to FILE.png or FILE.svg (needs gradlint[plot]).")
@click.option("--select", multiple=True, metavar="CODES",
              help="Rule codes or prefixes to check, comma-separated (e.g. GL1,GL401); replaces the configuration's "
                   "select.  [default: GL and every plugin's prefix]")
@click.option("--extend-select", multiple=True, metavar="CODES",
              help="Rule codes or prefixes to check as well (e.g. GL301).")
@click.option("--ignore", multiple=True, metavar="CODES", help="Rule codes or prefixes not to check (e.g. GL3,GL401).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Use this configuration for every target instead of discovering pyproject.toml files: a "
                   "pyproject.toml ([tool.gradlint]) or any other TOML file with the same keys at the top level.")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--debug", is_flag=True, help="Show tracebacks for failures.")
def check(targets, output_format, fail_on, exit_zero, input_shape, batch_size, seed, draws, device, dtype, what_if,
          plot_path, select, extend_select, ignore, config_file, isolated, debug):
    """Analyse every model in TARGETS (file.py, file.py:NAME or package.module:NAME).

    Settings come from [tool.gradlint] in the nearest pyproject.toml that has it (see docs/configuration.md);
    options given here beat it.
    """
    if plot_path:
        from .render.plot import check_destination

        problem = check_destination(plot_path)
        if problem:
            click.echo(f"gradlint: error: {problem}", err=True)
            sys.exit(2)
    try:
        # Every configuration is read and checked before any model runs: a bad one stops the run.
        cli = Overrides(
            selection=Selection(parse_codes(select, "--select"), parse_codes(extend_select, "--extend-select") or (),
                                parse_codes(ignore, "--ignore") or ()),
            fail_on=fail_on, output_format=output_format,
            probe=Probe(batch_size=batch_size, seed=seed, draws=draws, device=device, dtype=dtype,
                        input_shape=input_shape))
        configs = Resolver(cli, config_file, isolated)
        run = configs.for_run()
        plan = [(spec, configs.for_folder(_config_folder(spec))) for spec in targets]
    except GradlintError as exc:
        click.echo(f"gradlint: error: {exc}", err=True)
        sys.exit(2)
    results: list[TargetResult] = []
    for spec, settings in plan:
        results += _analyse_target(spec, settings, tuple(what_if))
    for r in results:
        if not r.ok:
            click.echo(f"gradlint: error: {r.error.message}", err=True)
            if debug and r.traceback:
                click.echo(r.traceback, err=True)
    if run.output_format == "json":
        from .render.json import render

        sys.stdout.write(render(results))
    else:
        from rich.console import Console

        from .render.text import render

        console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120,
                          no_color="NO_COLOR" in os.environ)
        render(results, console)
    sys.stdout.flush()
    code = exit_code(results, run.fail_on, exit_zero)
    if plot_path:
        code = max(code, _plot(results, plot_path, debug))
    sys.exit(code)


def _config_folder(spec: str) -> Path:
    """Where configuration discovery starts for a target: its file's folder, or for a module the working directory."""
    where, _, is_file = split_target(spec)
    return Path(where).resolve().parent if is_file else Path.cwd()


def _analyse_target(spec: str, settings: Settings, what_if: tuple[str, ...]) -> list[TargetResult]:
    """Every model ``spec`` names, each probed and judged with the settings for its file."""
    from . import progress
    from .api import ProbeOptions, analyse  # torch is imported only when a model is analysed
    from .load import resolve

    try:
        with progress.step(f"gradlint: importing {spec}"):
            sources = resolve(spec, ProbeOptions(**settings.probe_for(spec, None)).seed)
    except Exception as exc:  # noqa: BLE001 - never a traceback without --debug
        return [_internal(spec, exc)]
    results = []
    for source in sources:
        try:
            model_file = getattr(source, "path", None)
            opts = ProbeOptions(**settings.probe_for(source.target, model_file), what_if=what_if)
            with progress.step(f"gradlint: analysing {source.target}"):
                results.append(analyse(source, opts, settings.rules_for(model_file), settings.context_rules()))
        except Exception as exc:  # noqa: BLE001
            results.append(_internal(getattr(source, "target", spec), exc))
    return results


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


def _rule_docs() -> None:
    from .ruledocs import rule_command, rules_command

    main.add_command(rule_command)
    main.add_command(rules_command)


_rule_docs()
