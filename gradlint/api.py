"""The Python API: ``gradlint.lint(model, example_inputs)`` returns the report the CLI renders."""

from __future__ import annotations

import contextlib
import inspect
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from . import inputs as probe_inputs
from . import changes, probe, suppress, whatif
from .errors import GradlintError, InputError, one_line
from .inputs import ProbeInputs
from .paths import display_path, is_library_file
from .load import LoadFailure, ModelSource, user_code
from .report import AnalysisError, TargetResult, WhatIf
from .rules import Rule, check, suggest, suggesting



@dataclass(frozen=True)
class ProbeOptions:
    batch_size: int | None = None
    seed: int = 0
    draws: int = 1
    input_shape: tuple[int, ...] | None = None
    device: str | None = None
    dtype: str | None = None
    what_if: tuple[str, ...] = ()      # changes from gradlint.init to probe on a copy as well
    data_input: str | None = None      # the input the data path starts from (default: chosen from the graph)
    model_output: str | None = None    # which output is Y (default: every floating output, together)
    threads: int | None = None         # torch's intra-op threads while probing (default: torch's own)


def lint(model: nn.Module, example_inputs=None, *, batch_size: int | None = None, seed: int = 0,
         draws: int = 1, input_shape: tuple[int, ...] | None = None, target: str | None = None,
         what_if: tuple[str, ...] = (), rules: Sequence[Rule] | None = None, data_input: str | None = None,
         model_output: str | None = None, threads: int | None = None) -> TargetResult:
    """Probe ``model`` and judge it.  Raises ``GradlintError`` when the model cannot be analysed.

    ``example_inputs`` is a tensor, a tuple of positional inputs or a dict of keyword inputs (batch
    first); without it, inputs come from ``input_shape`` or are inferred from the first depth-bearing
    layer.  The model is probed where it
    is (its device and dtype) and left exactly as it was.  ``what_if`` names changes from
    ``gradlint.init`` ("orthogonal", "looks-linear", "zero-residual") to probe on a copy as well.
    ``rules`` are the rule instances to run (default: every rule on by default, default options).
    ``data_input`` names the forward argument the data path starts from (default: chosen from the graph;
    ``gradlint.Inputs(..., data_input=...)`` says the same), ``model_output`` which output is Y (a key, an
    index or a dotted path; default: every floating output together), ``threads`` torch's threads.
    """
    opts = ProbeOptions(batch_size=batch_size, seed=seed, draws=draws, input_shape=input_shape, what_if=what_if,
                        data_input=data_input, model_output=model_output, threads=threads)
    path, line = _definition(model)
    given = ProbeInputs.of(example_inputs) if example_inputs is not None else None
    return _lint(model, given, "given", opts, target or type(model).__name__, path, line, rules)


def _definition(model: nn.Module) -> tuple[str | None, int | None]:
    try:
        path = inspect.getsourcefile(type(model))
        if path and is_library_file(path):
            return None, None  # an nn.Sequential (or other torch container) built in place: no file of the user's
        _, line = inspect.getsourcelines(type(model))
    except (TypeError, OSError):
        return None, None
    return (display_path(path) if path else None), line


def _lint(model, given: ProbeInputs | None, source, opts: ProbeOptions, target, path, line, rules=None,
          context=None) -> TargetResult:
    if given is None:
        if opts.input_shape:
            shaped = probe_inputs.from_shape(model, opts.input_shape, opts.batch_size, opts.seed)
            given, source = ProbeInputs.of(shaped), "input-shape"
        else:
            with user_code():
                given, source = ProbeInputs.of(probe_inputs.infer(model, opts.batch_size, opts.seed)), "inferred"
    if not given.tensors():
        raise InputError(f"{target}: example inputs contain no tensor")
    unknown = [c for c in opts.what_if if c not in changes.CHANGES]
    if unknown:
        raise InputError(f"unknown what-if change {unknown[0]!r}; choose from {', '.join(changes.CHANGES)}")
    with user_code(), threads(opts.threads):
        probed = probe.run(model, given, target=target, path=path, line=line, seed=opts.seed,
                           draws=opts.draws, input_source=source, fit_memory=opts.batch_size is None,
                           data_input=opts.data_input, model_output=opts.model_output)
        report = probed.report
        variants = []
        for change in dict.fromkeys(opts.what_if):
            try:
                variants.append(whatif.run(model, given, change, probed.graph, target=target, path=path,
                                           line=line, seed=opts.seed, draws=opts.draws, input_source=source,
                                           rules=rules, context=context, data_input=opts.data_input,
                                           model_output=opts.model_output))
            except GradlintError as exc:
                variants.append(WhatIf(change, False, str(exc)))
    findings = check(report, rules, context)
    if suggesting(findings, rules):
        # Findings that suggest a gradlint.init change name only changes that really apply to this model.
        report = replace(report, applicable_changes=_applicable_changes(model, probed.graph))
        findings = suggest(findings, rules, report)
    findings, suppressed = suppress.split(report, findings)
    return TargetResult(target=target, report=report, findings=findings, what_if=tuple(variants),
                        suppressed=suppressed)


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


def _applicable_changes(model: nn.Module, graph=None) -> tuple[str, ...]:
    """The changes whose plan (on the probe's own graph: nothing is traced again) changes something."""
    from . import init

    fits = []
    for change in changes.CHANGES:
        try:
            if init.plan(model, change, graph=graph).changed:
                fits.append(change)
        except Exception:  # noqa: BLE001 - InitError, or a model the planner cannot trace
            continue
    return tuple(fits)


def analyse(source: ModelSource | LoadFailure, opts: ProbeOptions, rules: Sequence[Rule] | None = None,
            context: Sequence[Rule] | None = None, on_step: Callable[[str], None] | None = None) -> TargetResult:
    """Construct, probe and judge one model named on the command line; failures become results.

    ``rules`` are the rule instances that apply to this model's file (default: the default rules).
    """
    if isinstance(source, LoadFailure):
        return TargetResult(target=source.target, error=AnalysisError(str(source.error), source.error.kind),
                            traceback=source.traceback)
    try:
        torch.manual_seed(opts.seed)  # the model's own init draws from the global RNG: make it reproducible
        if on_step:
            on_step("construct")
        model = source.construct()
        if opts.device or opts.dtype:
            model = model.to(device=opts.device, dtype=getattr(torch, opts.dtype) if opts.dtype else None)
        given = None
        if not opts.input_shape:
            with user_code():
                value = source.example_inputs(model)
            if value is not None:
                device = next((p.device for p in model.parameters()), None)
                given = ProbeInputs.of(value)
                if device is not None:
                    given = given.map(lambda x: x.to(device))
        if on_step:
            on_step("probe")
        return _lint(model, given, "example_inputs" if given is not None else None, opts,
                     source.target, source.path, source.line, rules, context)
    except GradlintError as exc:
        message = str(exc)
        if not message.startswith(source.target) and not message.startswith(str(source.path)):
            message = f"{source.target}: {message}"
        return TargetResult(target=source.target, error=AnalysisError(message, exc.kind),
                            traceback=traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - the model's own code can raise anything
        detail = one_line(exc)
        return TargetResult(target=source.target,
                            error=AnalysisError(f"{source.target}: example_inputs or probe failed: {detail}; "
                                                "run with --debug for the traceback", "internal"),
                            traceback=traceback.format_exc())
