"""The frozen report: plain numbers measured by the probe, and the findings judged from them.

Nothing here holds a tensor.  Rules read a ``ModelReport``; renderers read ``TargetResult``s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from .vocabulary import SEVERITIES, SEVERITY_RANK  # noqa: F401 - re-exported: the report speaks the vocabulary


def at_or_above(findings, level: str) -> list:
    """The findings whose severity is ``level`` or worse (what ``--fail-on level`` fails on)."""
    bar = SEVERITY_RANK[level]
    return [f for f in findings if SEVERITY_RANK[f.severity] >= bar]


@dataclass(frozen=True)
class Layer:
    """One measured node, in forward order.  Collapse statistics are of the node's input (pre-activation)."""

    name: str
    op: str
    kind: str                         # input | layer | nonlinearity | norm | merge | embedding | concat (a skip's join)
    depth: int | None
    spine: bool
    gsc: float | None = None
    preact_std: float | None = None
    relative_spread: float | None = None
    sign_diversity: float | None = None
    nonlinearity: float | None = None
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    orthogonality_defect: float | None = None
    width: int | None = None          # output features (units) of a layer
    samples: int | None = None        # samples per unit behind the collapse statistics (batch x positions)
    rectified: bool | None = None     # the pre-activation has no negative value (a ReLU of a ReLU output)
    zero_input: bool | None = None    # the pre-activation is exactly zero on every sample (a dead branch)
    zero_from_init: bool | None = None  # ... and those zeros come from zero-initialised layers: not dead
    rms: float | None = None          # root mean square of the node's output (its activation scale at init)
    family: str | None = None         # nonlinearity family: relu | saturating | smooth
    path: str | None = None           # where the layer is defined (its module's construction), else called
    line: int | None = None
    weight: str | None = None         # the parameter holding a layer's weight ("blocks.0.fc.weight")
    copy_of: str | None = None        # an earlier layer's weight that this one equals value for value (a copy)
    bias_cancelled_by: str | None = None   # the batch/instance norm right after this layer's bias
    library: str | None = None        # where inside an installed package the layer was constructed
    layers: int | None = None         # depth-bearing layers it stands for (a stacked RNN: its stacked layers)
    positions: int | None = None      # positions per sample and unit (pixels, tokens; 1 for a vector)
    spine_point: bool = False         # a point of the GSC profile: float input, embedding, spine layer, residual merge
    head: bool = False                # after the network pooled its positions away: not in the explosion fit
    gate: bool = False                # on a branch that multiplies another path (SE, GLU, x * tanh(...)): not a depth link
    side: str | None = None           # off the data path: the side input (timestep, label, encoder memory) it comes from
    nested: bool = False              # on the spine inside a skip's span (a U-Net's inner path): skips bypass it
    bypassed: bool = False            # inside a residual branch, or reading a residual sum: a skip carries the data past
    gsc_error: float | None = None    # error bars (about 95%: docs/metrics.md) of gsc, sign_diversity, relative_spread,
                                      # nonlinearity
    sign_diversity_error: float | None = None
    relative_spread_error: float | None = None
    nonlinearity_error: float | None = None
    time_steps: int | None = None      # a recurrent layer: the steps of the sequence it read
    time_reach: float | None = None    # ... the gradient its first step receives against its last step's
    time_rate: float | None = None     # ... and that gradient's factor per step back in time


# A branch clearly larger than its skip (dilution k < 0.9) dominates the block (a branch and a skip that
# both end in a BatchNorm with weight 1 have k = 1.00 by construction: torchvision's projection blocks,
# so the margin keeps noise from deciding); a branch that carries under 1% of the block's squared
# gradient makes the block pass-through (the paper's notes call this tau = 0.01).
DOMINANT_DILUTION = 0.9
PASS_THROUGH_SHARE = 0.01


@dataclass(frozen=True)
class ResidualBlock:
    merge: str
    block_input: str
    skip: str
    branch: str
    dilution: float | None
    branch_share: float | None         # fraction of the squared gradient at the block input that came through the branch
    branch_depth: int                  # depth-bearing layers through the (deepest) branch
    skip_depth: int = 0                # ... through the skip: 0 identity, 1 projection
    branch_op: str | None = None       # the op producing the branch's output (e.g. BatchNorm2d, Linear, mul)
    zero_branch: bool = False          # the branch is exactly zero at init (adaLN-Zero, ReZero, a zeroed last norm)
    path: str | None = None
    line: int | None = None

    @property
    def pass_through(self) -> bool:
        return self.branch_share is not None and self.branch_share < PASS_THROUGH_SHARE


@dataclass(frozen=True)
class Shift:
    """A parameter added to the data path (a learned position embedding): its scale against the data's."""

    name: str                          # the add
    parameter: str                     # the parameter added (an embedding table looked up at fixed indices)
    ratio: float | None                # RMS of the parameter's elements / RMS of the data operand's
    depth: int | None
    spine: bool
    path: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Summary:
    compositional_depth: int
    effective_depth: float | None
    gsc_max: float | None
    gsc_input: float | None
    explosion_rate: float | None
    explosion_fit_r2: float | None
    min_sign_diversity: float | None
    min_relative_spread: float | None
    mean_orthogonality_defect: float | None
    min_preact_std: float | None = None
    spine_points: int = 0
    fit_points: int = 0                 # spine points of the body (not the head) the explosion rate is fitted over
    gsc_anchor: str | None = None       # the node GSC is relative to, when not the output
    effective_depth_p5: int | None = None   # 5th and 95th percentile of the gradient path length
    effective_depth_p95: int | None = None
    parameter_coverage: float | None = None   # fraction of trainable parameter elements the probe measured
    # error bars (about 95%: a bootstrap over the batch and the spread over cotangent draws, docs/metrics.md)
    gsc_input_error: float | None = None
    gsc_max_error: float | None = None
    explosion_rate_error: float | None = None
    effective_depth_error: float | None = None
    min_sign_diversity_error: float | None = None
    min_relative_spread_error: float | None = None


@dataclass(frozen=True)
class ProbeInput:
    """One tensor the model was called with, and its part in the structure."""

    name: str                           # the forward parameter it binds to (``name_i`` inside nested structures)
    shape: tuple[int, ...]
    dtype: str
    role: str                           # data | encoder | conditioning | unused


@dataclass(frozen=True)
class ProbeSettings:
    batch_size: int
    seed: int
    device: str
    dtype: str
    input_shapes: tuple[tuple[int, ...], ...]
    input_source: str = "inferred"      # example_inputs | input-shape | inferred | given
    reduced_from: tuple[tuple[int, ...], ...] | None = None   # the input shapes asked for, when memory made them smaller
    reduced_why: str | None = None
    data_input: str | None = None       # the input the data path starts from
    data_input_from: str = "graph"      # graph (chosen from the structure) | user (named by an option or example_inputs)
    inputs: tuple[ProbeInput, ...] = ()
    threads: int | None = None          # torch's intra-op threads during the probe


@dataclass(frozen=True)
class OutputStats:
    """Y, the output the GSC is relative to, and its softmax at initialisation when it holds logits."""

    tensors: int = 1                    # floating tensors Y holds, taken together (a forward returning several)
    selected: str | None = None         # the output the user picked (--model-output, Inputs(model_output=...))
    before_softmax: str | None = None   # softmax | log_softmax: Y is the logits the model's own (log-)softmax read
    logits: bool = False                # Y's first tensor is class or token logits (a linear head's units)
    classes: int | None = None
    entropy: float | None = None        # mean softmax entropy / ln C (1: uniform)
    init_loss: float | None = None      # expected cross-entropy at init against a uniform label (ln C when uniform)
    uniform_loss: float | None = None   # ln C
    logit_std: float | None = None      # std of the logits over classes (RMS over samples)
    saturated_fraction: float | None = None   # samples whose largest probability is >= 0.99
    head: str | None = None             # the layer that produces the logits
    logits_only: bool = False           # Y is the logits alone, of several output tensors (a state, a cache)
    same_for_every_sample: bool | None = None   # Y is the same for every sample of the batch (None: one sample)


@dataclass(frozen=True)
class ModelReport:
    target: str
    path: str | None                   # the file that defines the model
    line: int | None                   # the model's class, factory or instance definition
    trace: str                         # fx | export | hooks: the capture tier that ran
    trace_note: str | None             # why the earlier tiers could not capture the model
    probe: ProbeSettings
    summary: Summary
    layers: tuple[Layer, ...]
    residual_blocks: tuple[ResidualBlock, ...]
    nonfinite: tuple[str, ...] = ()     # nodes where the probe saw NaN or Inf, forward order
    output_zero: bool = False
    no_gradient: bool = False          # nothing upstream of the output requires grad
    applicable_changes: tuple[str, ...] = ()   # gradlint.init changes whose plan changes something in this model
    unmeasured: tuple[tuple[str, int, str], ...] = ()   # (module, trainable parameter elements, why) not measured
    output: OutputStats = OutputStats()
    shifts: tuple[Shift, ...] = ()     # parameters added to the data path, forward order

    def layer(self, name: str) -> Layer | None:
        return next((x for x in self.layers if x.name == name), None)


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    severity: str
    message: str
    recommendation: str
    layer: str | None
    value: float | None
    threshold: float | None
    path: str | None
    line: int | None
    library: str | None = None         # the layer's construction site inside an installed package
    value_error: float | None = None   # the value's error bar (about 95%), where the figure has one


@dataclass(frozen=True)
class AnalysisError:
    message: str
    kind: str                          # import | construct | input | forward | trace | internal


@dataclass(frozen=True)
class WhatIf:
    """The same model probed again after one change to its initial weights (``--what-if``)."""

    change: str                        # orthogonal | looks-linear | zero-residual
    applied: bool
    reason: str | None = None          # why the change could not be applied
    changed: tuple[str, ...] = ()      # parameters the change re-initialised
    skipped: tuple[tuple[str, str], ...] = ()   # (layer, why it was left as it was)
    report: ModelReport | None = None
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class TargetResult:
    target: str
    report: ModelReport | None = None
    findings: tuple[Finding, ...] = ()
    error: AnalysisError | None = None
    traceback: str | None = field(default=None, compare=False)
    what_if: tuple[WhatIf, ...] = ()
    suppressed: tuple[Finding, ...] = ()   # silenced by `# gradlint: ignore[...]` comments
    cached: bool = field(default=False, compare=False)   # the measured reports came from the cache (.gradlint_cache)

    @property
    def ok(self) -> bool:
        return self.error is None

    def _repr_html_(self) -> str:
        """Jupyter's view of a result: the HTML report (verdict, figures, findings, Fig. 1 panels)."""
        from .render.html import result_html
        return result_html(self)

    @classmethod
    def failed(cls, target: str, message: str, kind: str, traceback: str | None = None) -> TargetResult:
        """The result of a model that could not be analysed."""
        return cls(target=target, error=AnalysisError(message, kind), traceback=traceback)


def clean_number(x: float | None, digits: int = 6) -> float | None:
    """Round to ``digits`` significant figures so output is stable; NaN and Inf become None."""
    if x is None:
        return None
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return x
    if not math.isfinite(x):
        return None
    if x == 0:
        return 0.0
    return float(f"{x:.{digits}g}")


def to_plain(obj):
    """Dataclasses to dicts of JSON-ready values, in field order."""
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj) if f.compare}
    if isinstance(obj, (list, tuple)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, float):
        return clean_number(obj)
    return obj
