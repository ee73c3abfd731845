"""The Python API: ``gradlint.lint(model, example_inputs)`` returns the report the CLI renders."""

from __future__ import annotations

import contextlib
import inspect
import traceback
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from . import changes, halves, probe, whatif
from . import inputs as probe_inputs
from .assemble import Subject
from .errors import GradlintError, InputError, one_line
from .inputs import ProbeInputs
from .load import LoadFailure, ModelSource, user_code
from .paths import display_path, is_library_file
from .report import TargetResult
from .rules import Rule, judge
from .settings import Probe, lint_settings


def lint(model: nn.Module, example_inputs=None, *, target: str | None = None, what_if: tuple[str, ...] = (),
         rules: Sequence[Rule] | None = None, **settings) -> TargetResult:
    """Probe ``model`` and judge it.  Raises ``GradlintError`` when the model cannot be analysed.

    ``example_inputs`` is a tensor, a tuple of positional inputs or a dict of keyword inputs (batch
    first); without it, inputs come from ``input_shape`` or are inferred from the first depth-bearing
    layer.  The model is probed where it is (its device and dtype) and left exactly as it was.
    ``what_if`` names changes from ``gradlint.init`` ("orthogonal", "looks-linear", "zero-residual") to
    probe on a copy as well.  ``rules`` are the rule instances to run (default: every rule on by default,
    default options).  The other keywords are probe settings (``gradlint.settings.Probe``, documented in
    docs/configuration.md): ``batch_size``, ``seed``, ``draws``, ``input_shape``, ``data_input`` (the
    forward argument the data path starts from; ``gradlint.Inputs(..., data_input=...)`` says the same),
    ``model_output`` (which output is Y: a key, an index or a dotted path) and ``threads``.
    """
    path, line = _definition(model)
    given = ProbeInputs.of(example_inputs) if example_inputs is not None else None
    subject = Subject(target or type(model).__name__, path, line, "given")
    return _lint(model, given, subject, lint_settings(settings).resolved(), what_if, rules)


def sweep(build: Callable[..., nn.Module], key: str, values: Sequence[float], example_inputs=None, *,
          predict: float | None = None, rules: Sequence[Rule] | None = None, **settings):
    """Probe ``build(**{key: value})`` for each value (seeded alike) and fit how its figures grow
    (``gradlint.scaling.Sweep``; the same as ``gradlint file.py:build --sweep key=...``).  ``example_inputs``:
    the inputs, or a function of the model returning them (a width sweep changes their shape); other keywords
    as for ``lint``.  Returns (the sweep, the result of each size)."""
    from . import scaling
    from .render import verdict
    from .rules import default_rules

    rules = list(rules) if rules is not None else default_rules()
    results = []
    for v in values:
        resolved = lint_settings(settings).resolved()
        torch.manual_seed(resolved.seed)
        model = build(**{key: int(v) if float(v).is_integer() else v})
        inputs = example_inputs(model) if callable(example_inputs) else example_inputs
        given = ProbeInputs.of(inputs) if inputs is not None else None
        subject = Subject(f"{getattr(build, '__name__', 'model')}[{key}={v:g}]", *_definition(model), "given")
        results.append(_lint(model, given, subject, resolved, (), rules))
    thresholds = {r.code: dict(r.opts) for r in rules if r.code in ("GL101", "GL201", "GL202")}
    points = [scaling.point(v, r.report, verdict(r), sorted({f.code for f in r.findings})) for v, r in zip(values, results)]
    return scaling.analyse(key, points, predict, thresholds), results


def _definition(model: nn.Module) -> tuple[str | None, int | None]:
    try:
        path = inspect.getsourcefile(type(model))
        if path and is_library_file(path):
            return None, None  # an nn.Sequential (or other torch container) built in place: no file of the user's
        _, line = inspect.getsourcelines(type(model))
    except (TypeError, OSError):
        return None, None
    return (display_path(path) if path else None), line


def _lint(model: nn.Module, given: ProbeInputs | None, subject: Subject, settings: Probe,
          what_if: tuple[str, ...] = (), rules: Sequence[Rule] | None = None,
          context: Sequence[Rule] | None = None, cache=None) -> TargetResult:
    """Probe the model, and a copy for each what-if change, and judge them all the same way.  ``cache``
    (a ``gradlint.cache.Cache``): take the measured reports from it when the model's key is there, and
    store them there when it is not; the rules judge them either way."""
    unknown = [c for c in what_if if c not in changes.CHANGES]
    if unknown:
        raise InputError(f"unknown what-if change {unknown[0]!r}; choose from {', '.join(changes.CHANGES)}")
    given, subject = _probe_inputs(model, given, subject, settings)
    what_if = tuple(dict.fromkeys(what_if))
    with user_code(), threads(settings.threads):
        key = cached = None
        if cache is not None:
            from . import cache as caching

            key = caching.key(model, given, subject, settings, what_if)
            cached = cache.load(key) if key else None
        if cached is not None:
            report, variants = cached.report, cached.variants(rules, context)
        else:
            probed = halves.widen(probe.run(model, given, subject, settings), model, given, subject, settings)
            report = probed.report
            variants = tuple(whatif.run(model, given, change, probed.graph, subject, settings, rules, context)
                             for change in what_if)
            if key:
                cache.store(key, report, variants)
    findings, suppressed = judge(report, rules, context)
    return TargetResult(target=subject.target, report=report, findings=findings, what_if=variants,
                        suppressed=suppressed, cached=cached is not None)


def _probe_inputs(model: nn.Module, given: ProbeInputs | None, subject: Subject,
                  settings: Probe) -> tuple[ProbeInputs, Subject]:
    """The inputs given, else made from the input shape, else inferred; and the subject saying which."""
    if given is None:
        if settings.input_shape:
            shaped = probe_inputs.from_shape(model, settings.input_shape, settings.batch_size, settings.seed)
            given, subject = ProbeInputs.of(shaped), Subject(subject.target, subject.path, subject.line, "input-shape")
        else:
            with user_code():
                inferred = probe_inputs.infer(model, settings.batch_size, settings.seed)
            given, subject = ProbeInputs.of(inferred), Subject(subject.target, subject.path, subject.line, "inferred")
    if not given.tensors():
        raise InputError(f"{subject.target}: example inputs contain no tensor")
    return given, subject


@contextlib.contextmanager
def threads(count: int | None):
    """torch's intra-op threads set to ``count`` for the block (None: left as they are)."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def analyse(source: ModelSource | LoadFailure, settings: Probe, what_if: tuple[str, ...] = (),
            rules: Sequence[Rule] | None = None, context: Sequence[Rule] | None = None,
            on_step: Callable[[str], None] | None = None, cache=None) -> TargetResult:
    """Construct, probe and judge one model named on the command line (``settings`` resolved); failures
    become results.  ``rules`` are the rule instances that apply to this model's file (default: the
    default rules).  ``cache``: a ``gradlint.cache.Cache`` to reuse and keep measured reports in."""
    if isinstance(source, LoadFailure):
        return failure(source)
    step = on_step or (lambda name: None)
    try:
        torch.manual_seed(settings.seed)  # the model's own init draws from the global RNG: make it reproducible
        step("construct")
        model = source.construct()
        if settings.device or settings.dtype:
            model = model.to(device=settings.device, dtype=getattr(torch, settings.dtype) if settings.dtype else None)
        given = None
        if not settings.input_shape:
            with user_code():
                value = source.example_inputs(model)
            if value is not None:
                device = next((p.device for p in model.parameters()), None)
                given = ProbeInputs.of(value)
                if device is not None:
                    given = given.map(lambda x: x.to(device))
        step("probe")
        subject = Subject(source.target, source.path, source.line, "example_inputs")
        return _lint(model, given, subject, settings, what_if, rules, context, cache)
    except Exception as exc:  # noqa: BLE001 - the model's own code can raise anything
        return failure(source, exc)


def failure(source: ModelSource | LoadFailure, exc: BaseException | None = None) -> TargetResult:
    """The result of a model that could not be loaded (``source`` a LoadFailure) or analysed (``exc``
    raised while it was): gradlint's own errors keep their message and kind, anything else is the
    model's code failing, reported in one line."""
    if isinstance(source, LoadFailure):
        return TargetResult.failed(source.target, str(source.error), source.error.kind, source.traceback)
    if isinstance(exc, GradlintError):
        message = str(exc)
        if not message.startswith(source.target) and not message.startswith(str(source.path)):
            message = f"{source.target}: {message}"
        return TargetResult.failed(source.target, message, exc.kind, traceback.format_exc())
    return TargetResult.failed(source.target, f"{source.target}: example_inputs or probe failed: {one_line(exc)}; "
                                              "run with --debug for the traceback", "internal", traceback.format_exc())
