"""``gradlint.track(model, every=N)``: the probe during training.

The paper measures the GSC at initialisation and shows that it changes as the net trains (a ResNet's
effective depth grows).  A ``Tracker`` runs the same probe inside a training loop every ``every`` steps,
on the batch the loop already has, keeps the trajectory (step -> the report's headline figures and the
findings of the rules), says at which step each finding appears, disappears or changes severity, draws
the trajectories and writes them as JSON.

What a tracked probe is: ``probe.run`` on the model where it is, with its current weights, in the probe's
own mode (normalisation on batch statistics, dropout off, parameters not requiring grad), and the model
restored exactly as it was afterwards (``state.preserved``: modes, requires_grad, buffers such as
BatchNorm's running statistics, and every RNG stream), so a tracked run trains bit for bit as an
untracked one.  To stay cheap it skips what a single lint adds to the figures: the error bars (and with
them the half-batch probe of BatchNorm models) and the what-if copies; the graph captured at the first
probe is run again at the next ones, and the ``gradlint.init`` changes that apply are planned once.

Why not reuse the loop's own backward: the GSC is defined with a Gaussian cotangent at the output Y
(docs/metrics.md), which makes it a property of the network; the loop's backward carries the loss's
gradient, which depends on the labels and shrinks as the loss falls, so its figures would not be the
GSC, and reading them would need hooks on every activation of every step, not only of the tracked ones.

The callbacks (``gradlint.callbacks.huggingface``, ``gradlint.callbacks.lightning``) call ``arm``: the
next forward of the model runs the probe first, on that forward's own inputs.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from . import __version__, probe
from .api import _definition, threads
from .assemble import Subject
from .errors import one_line
from .halves import FIGURES
from .inputs import ProbeInputs
from .report import SEVERITY_RANK, Finding, ModelReport, Summary, clean_number, to_plain
from .rules import Rule, default_rules, judge
from .settings import Probe, lint_settings
from .vocabulary import FX

SCHEMA = "gradlint-track/1"
# The figures a tracker's table and plot show, in order (every headline figure is kept in the trajectory).
SHOWN = ("gsc_max", "gsc_input", "effective_depth", "explosion_rate", "min_sign_diversity", "min_relative_spread")
# Rules whose thresholds are on a shown figure: the plot draws them (figure -> rule code, its levels).
THRESHOLDS = {"gsc_max": ("GL101", ("info", "warning", "error")),
              "min_relative_spread": ("GL201", ("warning", "error")),
              "min_sign_diversity": ("GL202", ("warning", "error"))}


@dataclass(frozen=True)
class Point:
    """One tracked step: the headline figures (None where the probe failed, ``error`` saying why) and
    the findings the rules made of that step's report."""

    step: int
    summary: Summary | None
    findings: tuple[Finding, ...] = ()
    error: str | None = None

    def figure(self, name: str) -> float | None:
        return getattr(self.summary, name) if self.summary is not None else None


@dataclass(frozen=True)
class Event:
    """A rule's finding appearing, disappearing or changing severity between two tracked steps: a figure
    crossing one of the rule's thresholds.  ``before``/``after``: its severity then and now (None: no
    finding); value, threshold and message are the finding's (the earlier one's when it disappears)."""

    step: int
    code: str
    name: str
    before: str | None
    after: str | None
    value: float | None
    threshold: float | None
    message: str

    @property
    def kind(self) -> str:
        if self.before is None:
            return "appears"
        if self.after is None:
            return "disappears"
        return "rises" if SEVERITY_RANK[self.after] > SEVERITY_RANK[self.before] else "falls"


class Tracker:
    """The probe run every ``every`` steps of a training loop; see the module's docstring."""

    def __init__(self, model: nn.Module, every: int = 100, *, rules: Sequence[Rule] | None = None,
                 target: str | None = None, **settings):
        self.settings = checked(every, settings)
        self.model = model
        self.every = every
        self.rules = list(rules) if rules is not None else default_rules()
        self.subject = Subject(target or type(model).__name__, *_definition(model), "given")
        self.points: list[Point] = []
        self.last: ModelReport | None = None     # the latest successful probe's full report
        self._count = 0
        self._graph = None                       # the captured graph, reused while the inputs keep their form
        self._form = None
        self._changes: tuple[str, ...] | None = None
        self._armed = None

    # ------------------------------------------------------------------ measuring

    def step(self, inputs, step: int | None = None) -> Point | None:
        """Call once per training step with the step's model inputs (a tensor, a tuple of positional
        inputs or a dict of keyword inputs, as ``gradlint.lint`` takes them), before the step updates
        the weights.  Probes at steps 0, every, 2 * every, ...; ``step`` overrides the tracker's own count.
        Returns the new point, or None on the steps in between."""
        at = self._count if step is None else int(step)
        self._count = at + 1
        return self.measure(inputs, at) if at % self.every == 0 else None

    def measure(self, inputs, step: int) -> Point:
        """Probe now, whatever the step, and record it as ``step`` (replacing a point already there).
        A probe that fails does not stop training: the point records the error, and a warning says so."""
        given = ProbeInputs.of(inputs)
        if self.settings.batch_size:
            given = given.first(self.settings.batch_size)
        try:
            with threads(self.settings.threads), torch.enable_grad():
                report = self._probe(given)
        except Exception as exc:  # noqa: BLE001 - the model's own code can raise anything; training goes on
            point = Point(step, None, error=one_line(exc))
            warnings.warn(f"gradlint.track: the probe at step {step} failed ({point.error}); training goes on",
                          RuntimeWarning, stacklevel=2)
        else:
            findings, _ = judge(report, self.rules)
            point = Point(step, report.summary, findings)
            self.last = report
        self.points = [p for p in self.points if p.step != step] + [point]
        self.points.sort(key=lambda p: p.step)
        return point

    def _probe(self, given: ProbeInputs) -> ModelReport:
        form = _form(given)
        # an fx graph holds no shapes, so it serves inputs of any size; other tiers' graphs serve their own
        reuse = self._graph is not None and (form[:2] == self._form[:2] if self._graph.tier == FX
                                             else form == self._form)
        probed = probe.run(self.model, given, self.subject, self.settings, self._graph if reuse else None,
                           bars=False, changes=self._changes)
        self._graph, self._form, self._changes = probed.graph, form, probed.report.applicable_changes
        return probed.report

    def arm(self, step: int, module: nn.Module | None = None, drop: Sequence[str] = ()) -> None:
        """Measure at ``step`` on the inputs of the next forward of ``module`` (default: the model) that
        runs with gradients on, before that forward runs: how the callbacks probe the loop's own batch.
        ``drop``: keyword inputs left out of the probe (a Hugging Face model's ``labels``)."""
        self.disarm()

        def hook(_module, args, kwargs):
            if torch.is_grad_enabled():
                self.disarm()
                self.measure(ProbeInputs(tuple(args), {k: v for k, v in kwargs.items() if k not in drop}), step)

        self._armed = (module or self.model).register_forward_pre_hook(hook, with_kwargs=True)

    def disarm(self) -> None:
        if self._armed is not None:
            self._armed.remove()
            self._armed = None

    # ------------------------------------------------------------------ reading

    def trajectory(self, figure: str) -> list[tuple[int, float | None]]:
        """(step, value) of one headline figure (a ``Summary`` field, e.g. "gsc_max", "effective_depth")."""
        if figure not in Summary.__dataclass_fields__:
            raise ValueError(f"unknown figure {figure!r}; the tracked figures: {', '.join(FIGURES)}")
        return [(p.step, p.figure(figure)) for p in self.points]

    def events(self) -> list[Event]:
        """Every finding appearing, disappearing or changing severity, in step order (a finding present
        at the first tracked step appears there).  Findings are compared by rule: a rule's most severe."""
        events: list[Event] = []
        before: dict[str, Finding] = {}
        for p in self.points:
            if p.summary is None:
                continue
            now = _worst(p.findings)
            for code in sorted(set(before) | set(now)):
                b, a = before.get(code), now.get(code)
                if (b.severity if b else None) != (a.severity if a else None):
                    f = a or b
                    events.append(Event(p.step, code, f.name, b.severity if b else None, a.severity if a else None,
                                        f.value, f.threshold, f.message))
            before = now
        return events

    def report(self) -> str:
        """The trajectory as a plain-text table, then the events."""
        head = ["step", *SHOWN, "findings"]
        rows = [[str(p.step), *(_num(p.figure(k)) for k in SHOWN),
                 p.error or (", ".join(f"{c}:{f.severity}" for c, f in _worst(p.findings).items()) or "clean")]
                for p in self.points]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines = [f"gradlint.track {self.subject.target}: every {self.every} steps, {len(self.points)} probes"]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
        for e in self.events():
            level = f"{e.before or 'none'} -> {e.after or 'none'}"
            lines.append(f"step {e.step}: {e.code} {e.name} {e.kind} ({level}): {e.message}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        """The trajectory as JSON-ready values (schema "gradlint-track/1"); the same run gives the same dict."""
        return {
            "schema": SCHEMA,
            "gradlint": __version__,
            "target": self.subject.target,
            "every": self.every,
            "seed": self.settings.seed,
            "draws": self.settings.draws,
            "points": [{"step": p.step, "error": p.error, "summary": to_plain(p.summary),
                        "findings": to_plain(p.findings)} for p in self.points],
            "events": [{**to_plain(e), "kind": e.kind} for e in self.events()],
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write ``to_dict()`` as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(self.to_dict(), indent=2) + "\n")

    def plot(self, path: str | os.PathLike) -> None:
        """Draw the trajectories (one panel per shown figure, rule thresholds dashed) to a .png or .svg."""
        from .render.plot import trajectories

        levels = {r.code: r.opts for r in self.rules}
        lines = {k: [(f"{code} {lv}", levels[code][lv]) for lv in names]
                 for k, (code, names) in THRESHOLDS.items() if code in levels}
        trajectories(self.subject.target, {k: self.trajectory(k) for k in SHOWN}, lines, path)


def track(model: nn.Module, every: int = 100, *, rules: Sequence[Rule] | None = None, target: str | None = None,
          **settings) -> Tracker:
    """A ``Tracker`` probing ``model`` every ``every`` training steps (``tracker.step(inputs)`` in the loop).
    ``rules``: the rule instances judging each probe (default: every rule on by default); other keywords
    are probe settings as for ``gradlint.lint`` (``seed``, ``draws``, ``model_output``, ``data_input``,
    ``threads``; ``batch_size`` probes only the first samples of the loop's batch)."""
    return Tracker(model, every, rules=rules, target=target, **settings)


def checked(every: int, settings: dict) -> Probe:
    """The probe settings of a tracker, resolved; ValueError or TypeError says what is wrong with them."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"track(every={every!r}): every must be a positive integer (steps between probes)")
    return lint_settings(settings).resolved()


def _form(given: ProbeInputs) -> tuple:
    """What a captured graph depends on: positional count, keyword names, then every tensor's shape."""
    return (len(given.args), tuple(sorted(given.kwargs)), tuple(tuple(t.shape) for t in given.tensors()))


def _worst(findings: Sequence[Finding]) -> dict[str, Finding]:
    """Each rule's most severe finding (findings come most severe first)."""
    worst: dict[str, Finding] = {}
    for f in findings:
        worst.setdefault(f.code, f)
    return worst


def _num(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{clean_number(v, 3):g}"
