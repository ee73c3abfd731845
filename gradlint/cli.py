"""Command line: ``gradlint [check] PATH[:NAME] ...``.  A thin layer over ``gradlint.api``."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import click

from . import __version__
from .changes import CHANGES
from .config import Overrides, Resolver, Selection, Settings, parse_codes
from .errors import GradlintError, NoModelError, UsageError, one_line
from .paths import split_target
from .render import FORMATS, Output, plural, render, repository_root
from .report import TargetResult, at_or_above
from .settings import Probe, parse_shape, specs
from .settings import key as setting_key
from .vocabulary import SEVERITIES


class _DefaultCheck(click.Group):
    """``gradlint PATH`` means ``gradlint check PATH``."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = ["check", *args]  # a bare `gradlint` analyses the configured models
        return super().parse_args(ctx, args)


def _shape(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_shape(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a shape; give positive integers without the batch, e.g. 3,32,32") \
            from None


def _probe_options(command):
    """A command-line option for every probe setting gradlint.settings declares one for, in its order."""
    for name, spec in reversed(specs()):
        if not spec.option:
            continue
        if spec.kind == "integer":
            kind = {"type": click.IntRange(min=spec.minimum) if spec.minimum is not None else int}
        elif spec.kind == "choice":
            kind = {"type": click.Choice(list(spec.choices))}
        else:
            kind = {"callback": _shape} if spec.kind == "shape" else {}
        shown = spec.shown or (str(spec.default) if spec.default is not None else None)
        words = spec.help + (f"  [default: {shown}]" if shown else "")
        command = click.option(f"--{setting_key(name)}", name, metavar=spec.metavar, help=words, **kind)(command)
    return command


@click.group(cls=_DefaultCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradlint")
def main() -> None:
    """gradlint: lint PyTorch model architectures for exploding gradients, collapsing domains and
    non-orthogonal initial states (Philipp, Song & Carbonell)."""


@main.command()
@click.argument("targets", nargs=-1)
# Options a configuration can also set default to None: the command line beats the file, the file the default.
@click.option("--format", "output_format", type=click.Choice(list(FORMATS)),
              help="Output format: " + ", ".join(f"{name} ({what})" for name, what in FORMATS.items())
                   + ".  [default: text]")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the report to FILE instead of stdout.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour in the text report: auto follows the terminal, NO_COLOR and FORCE_COLOR.")
@click.option("--fail-on", type=click.Choice(list(SEVERITIES)),
              help="Exit 1 when a finding at or above this severity is found.  [default: error]")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings are found (2 still means failure).")
@_probe_options
@click.option("--what-if", "what_if", multiple=True, type=click.Choice(list(CHANGES)),
              help="Also probe a copy of each model with this change to its initial weights (gradlint.init) and "
                   "show the figures and findings before and after. Repeat for several.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True),
              help="Draw the paper's Fig. 1 panels (GSC, pre-activation std, sign diversity against depth) for "
                   "every model and what-if variant to FILE.png or FILE.svg (needs gradlint[plot]).")
@click.option("--sweep", metavar="KEY=V1,V2,...", callback=lambda ctx, param, value: _sweep_option(value),
              help="Probe the model function TARGET names at each size (e.g. depth=6,12,24 or width=64,128,256, "
                   "passed as a keyword): how its figures grow, and from which size each rule's threshold is "
                   "crossed; a width sweep also compares each layer type's activation scale (one target).")
@click.option("--predict", type=click.FloatRange(min=0, min_open=True), metavar="VALUE",
              help="With --sweep: extrapolate the figures to this size (e.g. the full model's depth).")
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
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop a model that takes longer (import, construction and probe) and report it as not analysed.")
@click.option("--changed-files", is_flag=True,
              help="TARGETS are files that changed (pre-commit passes them): run the configured models that are "
                   "in them or import them, and any models they define; skip files without a model, with a note.")
@click.option("--write-baseline", "write_baseline", is_flag=False, flag_value=".gradlint-baseline.json", default=None,
              metavar="[FILE]", help="Record every model's findings and key figures as the baseline "
                                     "(default FILE: .gradlint-baseline.json) and exit 0.")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False),
              help="Fail only on findings that are new since this baseline or whose value got worse beyond 25%; "
                   "report stale entries and how many findings the baseline absorbed.")
@click.option("--fix", "fix", is_flag=True,
              help="Edit the model files to fix the findings that have a safe fix (needs gradlint[fix]); each fix is "
                   "kept only when the probe, run again, no longer finds it and finds nothing new.")
@click.option("--unsafe-fixes", is_flag=True,
              help="With --fix or --diff: also apply the unsafe fixes (a gradlint.init call that changes the initial "
                   "weights after the model is built).")
@click.option("--diff", "diff", is_flag=True,
              help="Print the verified fixes as a unified diff instead of writing them (exit 1 when there is one).")
@click.option("--no-cache", is_flag=True, envvar="GRADLINT_NO_CACHE",
              help="Probe every model, neither reading nor writing the cache (also GRADLINT_NO_CACHE=1).")
@click.option("--cache-dir", type=click.Path(file_okay=False), envvar="GRADLINT_CACHE_DIR", metavar="DIR",
              help="Keep measured reports in DIR (also GRADLINT_CACHE_DIR, or cache-dir in the configuration).  "
                   "[default: .gradlint_cache next to the configuration, else in the working directory]")
@click.option("--debug", is_flag=True, help="Show tracebacks for failures.")
def check(targets, output_format, output_path, color, fail_on, exit_zero, what_if, plot_path, select, extend_select,
          ignore, config_file, isolated, timeout, changed_files, write_baseline, baseline_path, fix, unsafe_fixes, diff,
          no_cache, cache_dir,
          debug, sweep=None, predict=None, **probe):
    """Analyse every model in TARGETS (file.py, file.py:NAME or package.module:NAME); without TARGETS, the
    models listed in [tool.gradlint] models.

    Settings come from [tool.gradlint] in the nearest pyproject.toml that has it (see docs/configuration.md);
    options given here beat it.
    """
    if plot_path:
        from .render.plot import check_destination

        problem = check_destination(plot_path)
        if problem:
            click.echo(f"gradlint: error: {problem}", err=True)
            sys.exit(2)
    _sweep_usage(targets, sweep, predict, what_if or write_baseline or baseline_path or plot_path or changed_files)
    _fix_usage(fix, unsafe_fixes, diff, sweep or write_baseline or baseline_path)
    if write_baseline and baseline_path:
        _usage("--write-baseline and --baseline cannot be used together")
    try:
        # Every configuration is read and checked before any model runs: a bad one stops the run.
        cli = Overrides(
            selection=Selection(parse_codes(select, "--select"), parse_codes(extend_select, "--extend-select") or (),
                                parse_codes(ignore, "--ignore") or ()),
            fail_on=fail_on, output_format=output_format,
            probe=Probe(**probe),
            timeout=timeout)
        configs = Resolver(cli, config_file, isolated)
        run = configs.for_run()
        root = repository_root()
        plan, skippable = _plan(targets, changed_files, configs, run, root)
        if baseline_path:  # read before any model runs: a bad baseline stops the run at once
            from . import baseline

            recorded = baseline.read(Path(baseline_path))
    except GradlintError as exc:
        click.echo(f"gradlint: error: {exc}", err=True)
        sys.exit(2)
    if sweep:
        _sweep(plan, sweep, predict, run, output_path, color, exit_zero, debug)
    results, skipped = _analyse_plan(plan, tuple(what_if), skippable, None if no_cache else _cache(run, cache_dir))
    _failures(results, debug)
    rules = {r.code: r for _, settings in plan for r in settings.rules_for(None)}
    # a fix is checked by probing the edited files afresh (no cache)
    fixing = _fix(results, rules, lambda: _analyse_plan(plan, tuple(what_if), skippable, quiet=True)[0],
                  unsafe_fixes, diff) if fix or diff else None
    results = fixing.results if fixing else results
    comparison = None
    if write_baseline:
        _write_baseline(results, write_baseline, root)
    elif baseline_path:
        comparison = baseline.compare(results, recorded, root, baseline_path)
        click.echo(f"gradlint: {baseline.summary_line(comparison)}", err=True)
    output = Output(results, tuple(sorted(rules.values(), key=lambda r: r.code)), root, comparison, tuple(skipped),
                    fixes=tuple(fixing.outcomes) if fixing else None, changed=tuple(fixing.changed) if fixing else ())
    _emit(run.output_format, output, output_path, color)
    code = exit_code(results, run.fail_on, exit_zero or bool(write_baseline), comparison)
    if plot_path:
        code = max(code, _plot(results, plot_path, debug))
    sys.exit(code)


def _failures(results: list[TargetResult], debug: bool) -> None:
    """One line on stderr per target that could not be analysed (and its traceback with --debug)."""
    for r in results:
        if not r.ok:
            click.echo(f"gradlint: error: {r.error.message}", err=True)
            if debug and r.traceback:
                click.echo(r.traceback, err=True)


def _fix_usage(fix: bool, unsafe: bool, diff: bool, combined) -> None:
    """--fix, --unsafe-fixes and --diff used as they can be, and libcst there; or exit 2 saying how."""
    if unsafe and not (fix or diff):
        _usage("--unsafe-fixes needs --fix or --diff")
    if (fix or diff) and combined:
        _usage("--fix and --diff cannot be combined with --sweep or a baseline")
    if fix or diff:
        try:
            import libcst  # noqa: F401
        except ImportError:
            _usage(f"{'--fix' if fix else '--diff'} needs libcst, which is not installed; pip install 'gradlint[fix]'")


def _fix(results, rules, rerun, unsafe: bool, diff: bool):
    """Plan, apply and verify the fixes; with --diff print the diff and the summary, and exit (1: a diff)."""
    from . import fix as fixes
    from .render.fixes import lines

    fixing = fixes.apply(results, fixes.plan(results, rules), rerun, unsafe=unsafe, write=not diff)
    if diff:
        sys.stdout.write(fixing.diff)
        for line in lines(fixing.outcomes, fixing.changed, written=False):
            click.echo(f"gradlint: {line}", err=True)
        sys.stdout.flush()
        sys.exit(2 if any(not r.ok for r in results) else 1 if fixing.diff else 0)
    return fixing


def _usage(message: str) -> None:
    click.echo(f"gradlint: error: {message}", err=True)
    sys.exit(2)


def _sweep_usage(targets, sweep, predict, combined) -> None:
    """--sweep and --predict used as they can be, or exit 2 saying how."""
    if predict is not None and not sweep:
        _usage("--predict needs --sweep")
    if sweep and combined:
        _usage("--sweep cannot be combined with --what-if, --plot, --changed-files or a baseline")
    if sweep and len(targets) != 1:
        _usage("--sweep needs exactly one target, the function or class that builds the model (file.py:NAME)")


def _sweep_option(value: str | None):
    """``KEY=V1,V2,...`` as (key, sorted values); at least two sizes."""
    if value is None:
        return None
    key, _, listed = value.partition("=")
    try:
        values = sorted({float(v) for v in listed.split(",") if v.strip()})
    except ValueError:
        values = []
    if not key.strip().isidentifier() or len(values) < 2 or any(v <= 0 for v in values):
        raise click.BadParameter(f"'{value}' is not KEY=V1,V2,... with two or more positive sizes "
                                 "(e.g. depth=6,12,24)")
    return key.strip(), tuple(values)


def _sweep(plan, sweep, predict, run: Settings, output_path, color, exit_zero, debug) -> None:
    """Probe each size of the one planned target, fit, and emit the results with the sweep; exits."""
    from . import isolate, progress, scaling
    from .render import verdict

    if run.output_format not in ("text", "json"):
        _usage("--sweep reports in --format text or json")
    key, values = sweep
    (spec, settings), = plan
    seed = settings.probe_for(spec, None).seed
    isolate.prepare()
    results = []
    for v in values:
        with progress.step(f"gradlint: analysing {spec} at {key}={v:g}"):
            outcome = isolate.run(lambda step, v=v: _analyse_sized(spec, key, v, settings, seed, step),
                                  settings.timeout)
        results.append(outcome.value if outcome.ok else _not_analysed(f"{spec}[{key}={v:g}]", outcome))
    found = None
    if all(r.ok for r in results):
        thresholds = {r.code: dict(r.opts) for r in settings.rules_for(None) if r.code in ("GL101", "GL201", "GL202")}
        points = [scaling.point(v, r.report, verdict(r), sorted({f.code for f in r.findings}))
                  for v, r in zip(values, results)]
        found = scaling.analyse(key, points, predict, thresholds)
    _failures(results, debug)
    rules = tuple(sorted(settings.rules_for(None), key=lambda r: r.code))
    _emit(run.output_format, Output(results, rules, repository_root(), sweep=found), output_path, color)
    sys.exit(exit_code(results, run.fail_on, exit_zero))


def _analyse_sized(spec: str, key: str, value: float, settings: Settings, seed: int, step) -> TargetResult:
    """One size of a sweep, in its own child: ``NAME(key=value)``."""
    from .api import analyse, failure
    from .load import LoadFailure, sized

    try:
        source = sized(spec, key, value, seed)
    except GradlintError as exc:
        return failure(LoadFailure(f"{spec}[{key}={value:g}]", exc))
    return analyse(source, settings.probe_for(source.target, source.path), (), settings.rules_for(source.path),
                   settings.context_rules(), on_step=step)


def _cache(run: Settings, given: str | None):
    """The run's report cache (``gradlint.cache``): one folder for the whole run, like the run-level settings."""
    from . import cache

    cache.own_code()   # once, here, rather than in every child
    return cache.Cache(cache.folder_for(run.path.parent if run.path else None, given, run.cache_dir))


def _analyse_plan(plan, what_if: tuple[str, ...], skippable: set[str], cache=None,
                  quiet: bool = False) -> tuple[list[TargetResult], list]:
    """Every planned target's results (from ``cache`` where it holds them), and the helper modules skipped
    (each with a note on stderr, unless ``quiet``: the probe run again to check a fix)."""
    results: list[TargetResult] = []
    skipped: list[tuple[str, str]] = []
    for spec, settings in plan:
        found = _analyse_target(spec, settings, what_if, skip_if_empty=spec in skippable, cache=cache)
        if found is None:
            if not quiet:
                click.echo(f"gradlint: note: {spec}: no model in it; skipped", err=True)
            continue
        found, helpers = _helpers_skipped(spec, found)
        for target, why in helpers if not quiet else ():
            click.echo(f"gradlint: note: {target}: skipped, not probed ({why})", err=True)
        results += found
        skipped += helpers
    return results, skipped


def _write_baseline(results: list[TargetResult], path: str, root: Path) -> None:
    from .baseline import write

    try:
        count = write(results, Path(path), root)
    except OSError as exc:
        click.echo(f"gradlint: error: {path}: cannot write the baseline ({exc.strerror})", err=True)
        sys.exit(2)
    models = sum(r.ok for r in results)
    click.echo(f"gradlint: wrote {path}: {plural(count, 'finding')} of {plural(models, 'model')}", err=True)


def _emit(fmt: str, output: Output, path: str | None, color: str) -> None:
    """Write the report in ``fmt`` to ``path`` or stdout.  Machine formats are plain text; the text report
    goes through rich, coloured as ``color`` says (auto: the terminal, NO_COLOR and FORCE_COLOR decide)."""
    if fmt == "text":
        import io

        from rich.console import Console

        from .render.text import render as render_text

        sink = io.StringIO() if path else sys.stdout
        tty = sink.isatty() if hasattr(sink, "isatty") else False
        # auto: colour on a terminal unless NO_COLOR, or when FORCE_COLOR asks (rich reads both); never in
        # a file written with --output.  always and never beat the environment.
        if path and color == "auto":
            color = "never"
        console = Console(file=sink, highlight=False, width=None if tty else 120,
                          force_terminal=True if color == "always" else False if color == "never" else None,
                          no_color=False if color == "always" else True if color == "never" else None)
        if output.sweep is not None:
            from rich.text import Text

            from .render.sweep import lines

            for line in lines(output.sweep):
                console.print(Text(line))
        else:
            render_text(output.results, console, output.skipped)
        if output.fixes is not None:
            from rich.text import Text

            from .render.fixes import lines

            for line in lines(output.fixes, list(output.changed)):
                console.print(Text(line))
        text = sink.getvalue() if path else None
    else:
        text = render(fmt, output)
        if fmt in ("github", "sarif") and os.environ.get("GITHUB_STEP_SUMMARY"):
            # In GitHub Actions the whole report also goes to the job summary: annotations are capped per
            # step, and a SARIF upload is not read by people.
            with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
                f.write(render("markdown", output))
        if not path:
            sys.stdout.write(text)
    if path:
        Path(path).write_text(text, encoding="utf-8")
    sys.stdout.flush()


def _plan(targets, changed_files: bool, configs: Resolver, run: Settings, root: Path):
    """(target, its settings) to analyse, and the targets that may turn out to hold no model (skipped)."""
    from .project import affected, model_file

    if not targets:
        listed = run.model_targets()
        if not listed:
            where = f" ({run.path.name} has none)" if run.path else ""
            raise UsageError(f"no targets, and no models listed in [tool.gradlint] models{where}; give a file to "
                             "lint (gradlint model.py) or list models there")
        return [(t, configs.for_folder(_config_folder(t))) for t in listed], set()
    if not changed_files:
        return [(spec, configs.for_folder(_config_folder(spec))) for spec in targets], set()
    plan: dict[str, Settings] = {}
    skippable = set()
    for spec in targets:
        settings = configs.for_folder(_config_folder(spec))
        hits = affected(settings.model_targets(), Path(spec), root)
        for t in hits:
            plan.setdefault(t, configs.for_folder(_config_folder(t)))
        if not any(model_file(t) == model_file(spec) for t in hits):
            plan.setdefault(spec, settings)  # the file may define models of its own
            skippable.add(spec)
    return list(plan.items()), skippable


def _config_folder(spec: str) -> Path:
    """Where configuration discovery starts for a target: its file's folder, or for a module the working directory."""
    where, _, is_file = split_target(spec)
    return Path(where).resolve().parent if is_file else Path.cwd()


def _analyse_target(spec: str, settings: Settings, what_if: tuple[str, ...],
                    skip_if_empty: bool = False, cache=None) -> list[TargetResult] | None:
    """Every model ``spec`` names, each probed (or taken from ``cache``) and judged with the settings for its
    file, each in a child process of its own (``gradlint.isolate``) bounded by the configured timeout.  None
    when the file defines no model and ``skip_if_empty`` (a changed file pre-commit passed)."""
    from . import isolate, progress
    from .api import failure
    from .load import LoadFailure

    isolate.prepare()  # what every child needs is imported here, once, before any child is forked
    seed = settings.probe_for(spec, None).seed
    listed = cache.load_listing(spec, seed) if cache is not None else None
    if listed is None:
        with progress.step(f"gradlint: importing {spec}"):
            listing = isolate.run(lambda step: _models_in(spec, seed, files=cache is not None), settings.timeout)
        if not listing.ok:
            return [_not_analysed(spec, listing)]
        if isinstance(listing.value, LoadFailure):  # the target names no model: its one failure
            if skip_if_empty and isinstance(listing.value.error, NoModelError):
                return None
            return [failure(listing.value)]
        listed, files = listing.value
        if cache is not None:
            cache.store_listing(spec, seed, listed, files)
        quiet = set(listed)   # the listing's import showed the file's warnings
    else:
        quiet = set(listed[1:])   # the listing came from the cache: the first model's import shows them
    results = []
    for target in listed:
        with progress.step(f"gradlint: analysing {target}"):
            outcome = isolate.run(lambda step, t=target: _analyse_one(t, settings, what_if, seed, step, cache,
                                                                      warn=t not in quiet), settings.timeout)
        results.append(outcome.value if outcome.ok else _not_analysed(target, outcome))
    return results


# Failures that mean "this module is not a model one can call on its own" (its forward needs inputs gradlint
# cannot make), as opposed to a model that is broken.
_NOT_PROBED = ("input", "forward")


def _helpers_skipped(spec: str, results: list[TargetResult]) -> tuple[list[TargetResult], list[tuple[str, str]]]:
    """Modules a file defines, found (not named), that could not be probed are skipped with a note when some
    other module of the file was analysed; when none was, every failure stays a failure."""
    if split_target(spec)[1] is not None or not any(r.ok for r in results):
        return results, []
    kept, skipped = [], []
    for r in results:
        if not r.ok and r.error.kind in _NOT_PROBED:
            why = r.error.message.removeprefix(f"{r.target}: ")
            skipped.append((r.target, f"{why}; name it ({r.target}) with example_inputs to analyse it"))
        else:
            kept.append(r)
    return kept, skipped


def _models_in(spec: str, seed: int, files: bool = False):
    """The targets of the models ``spec`` names (``file.py:NAME``) and, with ``files``, the project files its
    import loaded (``cache.project_files``, what a cached listing depends on); or the failure saying why
    there are none."""
    from .load import LoadFailure, resolve

    sources = resolve(spec, seed)
    failures = [s for s in sources if isinstance(s, LoadFailure)]
    if failures:
        return failures[0]
    if not files:
        return [s.target for s in sources], ()
    from .cache import project_files

    return [s.target for s in sources], project_files()


def _analyse_one(target: str, settings: Settings, what_if: tuple[str, ...], seed: int, step,
                 cache=None, warn: bool = False) -> TargetResult:
    """One model, in its own child.  Its file is imported again here, not inherited from the listing's
    child: a process that ran torch's thread pool (module-level code may) cannot fork safely (GNU OpenMP
    hangs the child's first parallel op).  ``warn``: show the warnings the import raises (the listing's
    import showed them, unless the listing came from the cache)."""
    from .api import analyse
    from .load import resolve

    (source,) = resolve(target, seed, warn=warn)
    model_file = getattr(source, "path", None)
    return analyse(source, settings.probe_for(source.target, model_file), what_if, settings.rules_for(model_file),
                   settings.context_rules(), on_step=step, cache=cache)


def _not_analysed(target: str, outcome) -> TargetResult:
    if outcome.kind in ("timeout", "crash"):
        hint = ("raise --timeout or probe a smaller batch (--batch-size)" if outcome.kind == "timeout"
                else "run it alone, and with --debug, to see where")
        message = f"{target}: not analysed: {outcome.failure}; {hint}"
    else:
        message = f"{target}: internal error: {outcome.failure}; please report it (--debug shows the traceback)"
    return TargetResult.failed(target, message, outcome.kind, outcome.traceback)


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


def exit_code(results: list[TargetResult], fail_on: str, exit_zero: bool, comparison=None) -> int:
    """2 when a target could not be analysed; 1 when a finding is at or above ``fail_on`` (with a
    baseline: a new or worse one); else 0."""
    if any(not r.ok for r in results):
        return 2
    if exit_zero:
        return 0
    if comparison is not None:
        from .baseline import fails

        return 1 if fails(comparison, fail_on) else 0
    return 1 if at_or_above((f for r in results for f in r.findings), fail_on) else 0


def _rule_docs() -> None:
    from .ruledocs import rule_command, rules_command

    main.add_command(rule_command)
    main.add_command(rules_command)


_rule_docs()
