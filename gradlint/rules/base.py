"""The rule contract: one class per rule, a pure function from a ModelReport to findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from .. import changes
from ..report import Finding, Layer, ModelReport
from ..vocabulary import WHAT_IF, family


@dataclass(frozen=True)
class Bounded:
    """A rule example with a severity bound: a trigger the rule must flag at least at ``severity``, or a
    clean model it may flag at most at ``severity`` (e.g. VGG-19-BN: GL101 info, never a warning)."""

    factory: Callable[[], tuple]
    severity: str

    def __call__(self) -> tuple:
        return self.factory()

    @property
    def __name__(self) -> str:
        return self.factory.__name__


def at_least(factory: Callable[[], tuple], severity: str) -> Bounded:
    return Bounded(factory, severity)


def at_most(factory: Callable[[], tuple], severity: str) -> Bounded:
    return Bounded(factory, severity)


class Rule:
    """A rule: stable ``code``, kebab-case ``name``, default ``severity``, ``options`` (thresholds).

    Subclasses implement ``check``; the class docstring is the rule's documentation, with the
    sections What it does / Why is this bad? / Example / How to fix / References.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[str]
    summary: ClassVar[str]
    options: ClassVar[dict[str, float]] = {}
    # Changes from gradlint.init that fix what this rule finds, in order of preference; the finding
    # suggests the first one that fits the model, as a --what-if command to check it first.
    what_if: ClassVar[tuple[str, ...]] = ()
    # Model factories this rule must flag, and ones it must not (beside the rule, or in gradlint.rules.examples).
    triggers: ClassVar[tuple[Callable[[], tuple], ...]] = ()
    clean: ClassVar[tuple[Callable[[], tuple], ...]] = ()
    # Rules that read the other rules' findings (whether the model explodes or collapses) set this and
    # implement ``check_after``; they run once every other rule has.
    after_others: ClassVar[bool] = False
    # The other rules of the run, by code, at their configured options (set by ``check``): a rule that
    # leaves some layers to another reads that rule's level, so a configured level moves both.
    peers: dict[str, "Rule"] = {}

    def __init__(self, **overrides: float) -> None:
        unknown = set(overrides) - set(self.options)
        if unknown:
            raise ValueError(f"{self.code}: unknown option(s) {', '.join(sorted(unknown))}")
        self.opts = {**self.options, **overrides}

    def check(self, report: ModelReport) -> Iterable[Finding]:
        raise NotImplementedError

    def check_after(self, report: ModelReport, earlier: tuple[Finding, ...]) -> Iterable[Finding]:
        """For ``after_others`` rules: ``earlier`` are the findings of every other rule that ran."""
        raise NotImplementedError

    @classmethod
    def enabled_by_default(cls) -> bool:
        """Experimental rules (family 9, e.g. GL9xx) run only when selected explicitly."""
        return not family(cls.code).endswith("9")

    def finding(self, report: ModelReport, *, message: str, recommendation: str, layer: Layer | None = None,
                value: float | None = None, threshold: float | None = None, severity: str | None = None,
                error: float | None = None) -> Finding:
        path, line = (layer.path, layer.line) if layer is not None and layer.path else (report.path, report.line)
        message += near_threshold(value, error, threshold)
        # The first gradlint.init change that fixes this and applies to the model (the report lists them).
        change = next((c for c in self.what_if if c in report.applicable_changes), None)
        if change is not None:
            recommendation = f"{recommendation.rstrip()} {what_if_hint(report, change)}"
        return Finding(
            code=self.code, name=self.name, severity=severity or self.severity, message=message,
            recommendation=recommendation, layer=layer.name if layer is not None else None,
            value=value, threshold=threshold, path=path, line=line,
            library=layer.library if layer is not None else None, value_error=error,
        )


def pathology(findings: Iterable[Finding]) -> bool:
    """The model explodes, vanishes or collapses: a gradient-scale (GL1) or collapsing-domain (GL2)
    finding at warning or above."""
    return any(f.severity != "info" and f.code.startswith(("GL1", "GL2")) for f in findings)


# Below this relative spread a nonlinearity's domain has collapsed (GL201's warning level); the other
# collapse rules leave such layers to GL201, since their statistics are then degenerate.
COLLAPSED_SPREAD = 0.1


def what_if_hint(report: ModelReport, change: str) -> str:
    """One sentence naming the change and the command that shows its effect before any code is edited."""
    if WHAT_IF in report.target:  # a --what-if copy: changes are not combined on the command line
        return (f"On top of this change, {changes.description(change)} "
                f"(gradlint.init.{changes.function(change)}(model)) would apply as well.")
    if report.path and report.target.startswith(report.path):
        how = f"`gradlint {report.target} --what-if {change}`"
    else:
        how = f"`gradlint.lint(model, x, what_if=(\"{change}\",))`"
    return (f"To try {changes.description(change)} (gradlint.init.{changes.function(change)}(model)) without "
            f"editing code, {how} shows the findings before and after.")


def grade(value: float, levels: list[tuple[str, float]], above: bool = True) -> tuple[str, float] | None:
    """The first (severity, threshold) of ``levels`` (most severe first) that ``value`` reaches:
    at or above the threshold, or at or below it with ``above=False``."""
    for severity, threshold in levels:
        if threshold and ((value >= threshold) if above else (value <= threshold)):
            return severity, threshold
    return None


def near_threshold(value: float | None, error: float | None, threshold: float | None) -> str:
    """What a finding adds when its value lies within its error bar of the threshold that decided it."""
    if value is None or error is None or threshold is None or abs(value - threshold) > error:
        return ""
    return (f" ({fmt_bar(value, error)} lies within its error bar of the threshold {fmt(threshold)}: "
            "another probe batch could decide otherwise)")


def fmt_bar(x: float | None, error: float | None) -> str:
    """A figure with its error bar, ``175 +/- 8`` (the bar to 2 significant figures)."""
    if x is None or error is None:
        return fmt(x)
    return f"{fmt(x)} +/- {error:.2g}" if error < 1e4 else f"{fmt(x)} +/- {error:.1e}"


def fmt(x: float | None) -> str:
    """Numbers in messages: 3 significant figures, scientific when large or small."""
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.2e}"
    return f"{x:.3g}"


def nonlinearities(report: ModelReport) -> Iterator[Layer]:
    return (x for x in report.layers if x.kind == "nonlinearity")


def disconnected(report: ModelReport) -> bool:
    """The output does not depend on the input: no gradient reaches the data input and the output is the
    same for every sample of the batch (GL103's error; the rules that would explain a weak dependence
    leave the model to it)."""
    return report.summary.gsc_input == 0 and bool(report.output.same_for_every_sample)


def cut(report: ModelReport) -> Layer | None:
    """Where no gradient reaches any more, when none reaches the input: the spine point nearest the output
    whose GSC is 0 (everything before it gets none either)."""
    if report.summary.gsc_input != 0:
        return None
    return min((x for x in spine_points(report) if x.gsc == 0), key=lambda x: x.depth or 0, default=None)


def spine_points(report: ModelReport) -> list[Layer]:
    """Where the GSC profile is read (the probe marks them: float inputs, embedding outputs, depth-bearing
    spine layers, residual merges)."""
    return [x for x in report.layers if x.spine_point]


def plain_runs(report: ModelReport) -> list[list[Layer]]:
    """Runs of consecutive depth-bearing spine layers with no residual merge or concatenation skip between."""
    merges = {b.merge for b in report.residual_blocks}
    runs: list[list[Layer]] = [[]]
    for x in report.layers:
        if not x.spine:
            continue
        if x.name in merges or x.kind == "concat":
            runs.append([])
        elif x.kind == "layer":
            runs[-1].append(x)
    return [r for r in runs if r]


def depth_layers(report: ModelReport) -> list[Layer]:
    return [x for x in report.layers if x.kind == "layer"]


def collapsed(layer: Layer, spread: float = COLLAPSED_SPREAD) -> bool:
    """The layer's domain has collapsed (GL201's business, below its warning level ``spread``): its other
    statistics are degenerate."""
    return layer.relative_spread is not None and layer.relative_spread < spread


def residual_fix(report: ModelReport) -> str:
    """How to make the skips dominate, in the words of the code the model is written in."""
    ops = {(b.branch_op or "").split(", ")[-1] for b in report.residual_blocks}
    if ops and ops <= {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d"}:
        return ("zero-initialise the last BatchNorm of each residual branch: torchvision's resnet*() and "
                "resnext*() take `zero_init_residual=True`; in your own blocks, "
                "`nn.init.zeros_(block.bn2.weight)` for the branch's last BatchNorm")
    return ("zero-initialise the last normalisation or linear layer of each residual branch, or scale each "
            "branch by 1/sqrt(number of blocks)")


def span(layers: list[Layer]) -> str:
    """'a..b' naming the first and last of a run of layers."""
    if not layers:
        return ""
    return layers[0].name if len(layers) == 1 else f"{layers[0].name}..{layers[-1].name}"


def gsc_steps(points: list[Layer]) -> list[tuple[Layer, Layer, float]]:
    """(deeper point, next point toward the output, factor by which the GSC grows between them)."""
    return [(a, b, b.gsc / a.gsc) for a, b in zip(points, points[1:]) if a.gsc and b.gsc]
