"""The probe: measurement only.  One forward reduces each node's value to statistics as it passes, one
backward of a Gaussian cotangent reduces each node's gradient to its squared norm (tensor hooks), and
``assemble`` lays the plain numbers out as a frozen ``ModelReport``.

The graph comes from ``gradlint.capture`` (its tiers: torch.fx, then torch.export, then module hooks),
which runs the model under the ``Observer`` here.  The probe needs the gradient of every activation and
of no weight, so parameters do not require grad while it runs: the backward skips the weight-gradient
half of the work, and autograd keeps fewer tensors.  Dropout is off; normalisation stays in training
mode (batch statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from . import assemble, capture, copies, init, memory, ops, outputs, recurrence, stats
from .assemble import Measure, Measured, Subject
from .capture import Graph, Node
from .capture.tiers import run as run_captured
from .inputs import ProbeInputs, batch_size_of, sequence_first
from .report import ModelReport, ProbeInput, ProbeSettings
from .settings import Probe
from .state import preserved

_NO_INFINITY = frozenset({ops.LAYER, ops.NONLINEARITY, ops.NORM, ops.EMBEDDING})


class Observer:
    """Reduces every value to statistics as it passes; keeps a tensor only where the backward needs it."""

    def __init__(self, keep: set[str] | None, budget: float | None = None, batch: int | None = None,
                 summary_only: bool = False):
        self.keep = keep                  # spine point ids (None: every measured node), candidates for an anchor
        self.budget = budget              # bytes the forward's values may take before the batch is cut
        self.batch = batch                # samples along dim 0, the bootstrap's rows (None: sequence-first, or no bars)
        self.used = 0.0
        self.measures: dict[str, Measure] = {}
        # The last non-zero spine point so far, kept in case the output is zero (a zero-initialised head):
        # the only value the probe holds that autograd might not.
        self.anchor: tuple[str, torch.Tensor] | None = None
        self.leaves: list[torch.Tensor] = []
        self.weights: list[tuple[str, torch.Tensor, str | None]] = []
        self.alias_sq: dict[tuple[str, str], list] = {}
        self.alias_ps: dict[tuple[str, str], list] = {}   # ... and per sample, where dim 0 is the batch
        self.softmaxed: dict[int, tuple] = {}   # id(result) -> (logits, "softmax" | "log_softmax", result)
        self.kept: dict[str, torch.Tensor] = {}      # values of the splits measured apart (graph.apart)...
        self.kept_grad: dict[str, torch.Tensor] = {}  # ... and the gradient each received in the last pass
        self.quiet = False                            # True while measuring apart: the hooks record nothing
        self.summary_only = summary_only              # only the headline figures are read (``run``)
        self._defects: dict[int, float | None] = {}

    def observe(self, node: Node, out, x_in=None, weight=None, module: nn.Module | None = None):
        """Fill the node's measure from its output; returns the value to hand on (a grad leaf if needed).
        An op returning a tuple (an RNN's (output, state), attention's (output, weights)) is measured at
        its first element."""
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            first = self.observe(node, out[0], x_in, weight, module)
            return out if first is out[0] else type(out)((first, *out[1:]))
        if not isinstance(out, torch.Tensor):
            return out
        m = self.measures.setdefault(node.id, Measure())
        m.units_first = self._layout(node, out, module)
        if not out.is_floating_point():
            return out
        m.norm = stats.frobenius(out)
        m.value_ps = self._per_sample(out)
        m.numel = out.numel()
        units = (out.shape[1] if m.units_first and out.dim() >= 3 else out.shape[-1]) if out.dim() else None
        if out.dim() >= 2:
            m.positions = out.numel() // max(1, out.shape[0] * units)
        elif out.dim() == 1:
            m.positions = 1
        # NaN anywhere is a defect; an infinity only where a layer, nonlinearity, norm or embedding makes it:
        # -inf written into attention scores (a causal mask, masked_fill) is what the softmax after it expects.
        m.nonfinite = math.isnan(m.norm) or (math.isinf(m.norm) and node.kind in _NO_INFINITY)
        if node.kind == ops.LAYER:
            m.width = None if units is None else int(units)
            if isinstance(weight, torch.Tensor) and weight.is_floating_point() and not self.summary_only:
                if id(weight) not in self._defects:
                    self._defects[id(weight)] = stats.orthogonality_defect(weight)
                m.defect = self._defects[id(weight)]
                self.weights.append((node.id, weight, node.weight or node.name))
            if isinstance(module, nn.RNNBase) and not (self.quiet or self.summary_only):
                m.reach = recurrence.measure(module, x_in)
        if (node.kind == ops.NONLINEARITY and isinstance(x_in, torch.Tensor) and x_in.is_floating_point()
                and not m.nonfinite):
            m.collapse = stats.collapse(x_in, None if self.summary_only else out, bool(m.units_first),
                                        node.family == ops.RELU, node.saturation,
                                        per_sample=self.batch is not None and x_in.dim() >= 2
                                        and x_in.shape[0] == self.batch)
        if not node.measured:
            return out
        handed = out
        if not out.requires_grad:
            out = out.detach().requires_grad_(True)   # e.g. embeddings of token ids: gradients start here
            self.leaves.append(out)
            handed = out.clone()
        elif node.kind == ops.INPUT:
            self.leaves.append(out)   # the backward stops at the leaves it is given: the float inputs are ones
        out.register_hook(self._sum_into(m.grad_sq, m.grad_ps))
        if (self.keep is None or node.id in self.keep) and m.norm > 0 and out.requires_grad:
            self.anchor = (node.id, out)
        return handed

    def count(self, value) -> None:
        """Add a value's bytes to what the forward has made; past the budget, stop it (the batch is cut)."""
        if self.budget is not None:
            self.used += memory.bytes_of_values([value])
            if self.used > self.budget:
                raise memory.OverBudget(self.used)

    def operands(self, node: Node, values: list) -> None:
        """A merge's (or a shift's) operand norms, in the order of its preds: a residual block's dilution
        is read here, whatever the operands are (a dropout, a scaled branch, an alias of the block input)."""
        if len(values) != len(node.preds):
            return
        floats = [isinstance(v, torch.Tensor) and v.is_floating_point() for v in values]
        m = self.measures.setdefault(node.id, Measure())
        m.operands = tuple(stats.frobenius(v) if f else None for v, f in zip(values, floats))
        m.operand_sizes = tuple(v.numel() if f else 0 for v, f in zip(values, floats))

    def alias(self, key: tuple[str, str], out):
        """One side of a split's start: its gradient is that side's share."""
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.register_hook(self._sum_into(self.alias_sq.setdefault(key, []), self.alias_ps.setdefault(key, [])))
        return out

    def hold(self, name: str, out) -> None:
        """A start, end or operand of a split measured apart: its value, and its gradient in each pass."""
        if isinstance(out, torch.Tensor) and out.requires_grad:
            self.kept[name] = out
            out.register_hook(lambda grad: None if self.quiet else self.kept_grad.__setitem__(name, grad))

    def measure_apart(self, apart) -> None:
        """After a backward pass: for each split in ``apart``, each side's gradient at the start is the
        vector-Jacobian product of its operand with the gradient the end received (an add hands the same
        gradient to every operand), recorded like an alias's.  A side with no path to the start adds 0."""
        self.quiet = True
        try:
            for start, end, operands in apart:
                s, g = self.kept.get(start), self.kept_grad.get(end)
                values = [self.kept.get(o) for o in operands]
                if s is None or g is None or any(v is not None and v.shape != g.shape for v in values):
                    continue
                for o, v in zip(operands, values):
                    grad = None if v is None else torch.autograd.grad(v, s, g, retain_graph=True, allow_unused=True)[0]
                    self.alias_sq.setdefault((end, o), []).append(0.0 if grad is None else stats.frobenius(grad) ** 2)
                    self.alias_ps.setdefault((end, o), []).append(
                        torch.zeros(stats.groups(self.batch or 0), dtype=torch.float64) if grad is None
                        else self._per_sample(grad))
        finally:
            self.quiet = False

    def softmax(self, row: str, logits, out) -> None:
        """A softmax or log-softmax and the logits it read (Y is read at the logits when it is the output)."""
        self.softmaxed[id(out)] = (logits, row, out)

    def _sum_into(self, sink: list, per_sample: list):
        def hook(grad: torch.Tensor | None):
            # an undefined gradient (no path to the leaves asked for) adds nothing
            if grad is not None and not self.quiet:
                sink.append(stats.frobenius(grad) ** 2)
                per_sample.append(self._per_sample(grad))
        return hook

    def _per_sample(self, t: torch.Tensor) -> torch.Tensor | None:
        """Squared norms per sample, for the bootstrap over the batch (None where dim 0 is not the batch)."""
        return stats.per_sample_sq(t) if self.batch is not None and t.dim() and t.shape[0] == self.batch else None

    def _layout(self, node: Node, out: torch.Tensor, module: nn.Module | None) -> bool:
        """Whether units are dim 1 (after convolutions) or the last dim."""
        if node.units_first is not None:
            return node.units_first
        for p in node.preds:
            pm = self.measures.get(p)
            if pm is not None and pm.units_first is not None:
                return pm.units_first
        return out.dim() >= 4


@dataclass
class Probed:
    """One probe's outcome: the report, and the captured graph (reused by init planning and what-if)."""

    report: ModelReport
    graph: Graph


def probe_mode(model: nn.Module) -> None:
    """Train mode for normalisation (batch statistics), dropout off, parameters not requiring grad."""
    model.train()
    for m in model.modules():
        if ops.is_dropout_module(m):
            m.eval()
    for p in model.parameters():
        p.requires_grad_(False)


def run(model: nn.Module, inputs: ProbeInputs, subject: Subject, settings: Probe, graph: Graph | None = None,
        summary_only: bool = False, bars: bool = True, changes: tuple[str, ...] | None = None) -> Probed:
    """Probe ``model`` on ``inputs`` with ``settings`` (resolved); the model is left exactly as it was.
    ``graph``: a graph captured from this model before (or rebound to it), so nothing is traced again.
    Without a batch size in the settings, the batch is cut when the probe's estimated memory exceeds half
    of what is available (the report says so).  ``summary_only``: only the summary's headline figures will
    be read (the half-batch probe of ``halves``), so none of what feeds nothing else is measured: no error
    bars (no per-sample sums), no orthogonality defects, pseudo-linearity scores, gradients through time,
    copied layers or applicable init changes.  ``bars=False``: everything but the error bars (no
    per-sample sums; a tracker's probe, which the rules judge).  ``changes``: the ``gradlint.init``
    changes known to apply (a tracker's first probe found them), so they are not planned again."""
    device = next((p.device for p in model.parameters()), None) or _first_device(inputs)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    trainable = _trainable(model)
    asked = inputs
    facts = inputs.facts(model, settings.data_input or inputs.data_input)
    inputs = inputs.map(lambda x: x.detach().clone().requires_grad_(x.is_floating_point()))
    fit = memory.Fit(inputs, device if settings.batch_size is None else None)
    with preserved(model):
        probe_mode(model)
        captured = run_captured(model, inputs, facts, _observer_for(model, fit, summary_only, bars), fit,
                                settings.seed, graph)
        observer, graph, inputs = captured.observer, captured.graph, captured.inputs
        y_norm, ys, anchor, output = outputs.y_of(captured.result, observer, graph,
                                                  settings.model_output or inputs.model_output,
                                                  None if sequence_first(model) else batch_size_of(model, inputs.tensors()))
        gen = torch.Generator().manual_seed(settings.seed + 1)
        no_grad = _backward(observer, ys, settings.draws, gen, graph.apart) if ys else True
    _finish(observer, y_norm, settings.draws)
    y_ps = _output_per_sample(observer, ys)
    if not summary_only:
        copies.mark(observer.weights, observer.measures)
    recorded = _settings(model, graph, inputs, asked, fit, facts, seed=settings.seed, device=device, dtype=dtype,
                         source=subject.input_source)
    measured = Measured(observer.measures, assemble.split_shares(observer.alias_sq), recorded, trainable, output,
                        anchor, no_grad and anchor is None,
                        () if summary_only else init.applicable(model, graph) if changes is None else changes,
                        assemble.PerSample(observer.batch, settings.draws, y_ps, observer.alias_sq, observer.alias_ps))
    return Probed(assemble.report(graph, measured, subject), graph)


def _observer_for(model: nn.Module, fit: memory.Fit, summary_only: bool = False, bars: bool = True):
    """A fresh observer for each run: the spine's points may anchor the GSC, the memory budget may cut the
    batch, and the batch (dim 0, unless the model is sequence-first) is what the bootstrap resamples.
    For a ``summary_only`` probe, or one without ``bars``, the observer keeps no per-sample sums at all
    (nothing resamples them)."""
    def make(g: Graph | None, inputs: ProbeInputs) -> Observer:
        batch = None if summary_only or not bars or sequence_first(model) else batch_size_of(model, inputs.tensors())
        return Observer(set(g.structure.spine) if g else None, fit.cap(), batch, summary_only)
    return make


def _settings(model: nn.Module, graph: Graph, inputs: ProbeInputs, asked: ProbeInputs, fit: memory.Fit,
              facts: capture.InputFacts, *, seed: int, device, dtype, source: str) -> ProbeSettings:
    """The report's record of what the probe ran: inputs and their roles, batch, seed, device, threads."""
    st = graph.structure
    roles = {graph.nodes[i].name: role for i, role in st.streams.items()}
    described = tuple(ProbeInput(name, tuple(int(d) for d in t.shape), str(t.dtype).replace("torch.", ""),
                                 roles.get(name) or roles.get(name.rpartition("_")[0], "unused"))
                      for name, t in inputs.named_tensors(model))
    return ProbeSettings(
        batch_size=batch_size_of(model, inputs.tensors()), seed=seed, device=str(device),
        dtype=str(dtype).replace("torch.", ""), input_shapes=_shapes(inputs), input_source=source,
        reduced_from=_shapes(asked) if fit.why else None, reduced_why=fit.why,
        data_input=graph.nodes[st.data_input].name if st.data_input is not None else None,
        data_input_from="user" if facts.data else "graph", inputs=described, threads=torch.get_num_threads(),
    )


def _shapes(inputs: ProbeInputs) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(s) for s in x.shape) for x in inputs.tensors())


def _backward(observer: Observer, ys: list[torch.Tensor], draws: int, gen: torch.Generator, apart=()) -> bool:
    """``draws`` backward passes of Gaussian cotangents u; the hooks sum each node's squared gradient.
    Each pass differentiates the scalar sum(u * Y), whose gradient at Y is exactly u (and which spares
    torch's shape checks of explicit cotangents their import of sympy); the splits in ``apart`` are
    measured after each pass.  Returns True when no gradient reached any recorded node."""
    try:
        for d in range(draws):
            pairing = sum((y * _cotangent(y.shape, gen, y)).sum() for y in ys)
            retain = d < draws - 1 or bool(apart)
            if observer.leaves:
                torch.autograd.grad(pairing, observer.leaves, allow_unused=True, retain_graph=retain)
            else:
                pairing.backward(retain_graph=retain)
            if apart:
                observer.measure_apart(apart)
    finally:
        observer.anchor = None
        observer.leaves.clear()
        observer.kept.clear()
        observer.kept_grad.clear()
    return not any(m.grad_sq for m in observer.measures.values())


def _finish(observer: Observer, y_norm: float, draws: int) -> None:
    for m in observer.measures.values():
        if m.grad_sq and m.norm is not None:
            total = float(sum(m.grad_sq))
            if not math.isfinite(total):
                m.nonfinite = True
            m.gsc = stats.gsc_from_sum(total / draws, m.numel, m.norm, y_norm)
            m.y_norm = y_norm
        m.draw_sums, m.grad_sq = m.grad_sq, []


def _output_per_sample(observer: Observer, ys: list[torch.Tensor]):
    """Y's squared norm per sample (None where some part of Y is not batch-first)."""
    parts = [observer._per_sample(y) for y in ys]
    return sum(parts) if parts and all(p is not None for p in parts) else None


def _cotangent(shape: torch.Size, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Standard Gaussian scaled to mean square exactly 1: still E[u u^T] = I, so still unbiased."""
    u = torch.randn(shape, generator=gen, dtype=torch.float64)
    u = u * math.sqrt(u.numel() / float((u * u).sum()))
    return u.to(device=like.device, dtype=like.dtype)


def _trainable(model: nn.Module) -> dict[str, int]:
    """Trainable parameters (first name of each, tied ones once) -> elements."""
    return {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}


def _first_device(inputs: ProbeInputs) -> torch.device:
    first = next(iter(inputs.tensors()), None)
    return first.device if first is not None else torch.device("cpu")
