"""The probe: measurement only.  One forward reduces each node's value to statistics as it passes, one
backward of a Gaussian cotangent reduces each node's gradient to its squared norm (tensor hooks), and
the result is a frozen ``ModelReport`` of plain numbers.

The graph comes from ``gradlint.capture`` (torch.fx, then torch.export, then module hooks).  The
probe needs the gradient of every activation and of no weight, so parameters do not require grad
while it runs: the backward skips the weight-gradient half of the work, and autograd keeps fewer
tensors.  Dropout is off; normalisation stays in training mode (batch statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
import torch.fx as fx
import torch.nn as nn

from . import capture, memory, ops, stats
from . import graph as graph_structure
from .capture import ALIAS_META, META, Graph, Node
from .capture import hooks as hooks_tier
from .capture.classify import weight_argument
from .errors import ProbeError, one_line
from .inputs import ProbeInputs, batch_size_of
from .report import Layer, ModelReport, OutputStats, ProbeInput, ProbeSettings, ResidualBlock, Shift, Summary
from .state import preserved

UNMEASURED_LISTED = 8   # modules named in the report's list of what the probe did not see


@dataclass
class Measure:
    """What the probe measured at one node: plain numbers once the backward is done."""

    norm: float | None = None
    numel: int = 0
    positions: int | None = None          # positions per sample and unit (pixels, tokens; 1 for a vector)
    nonfinite: bool = False
    units_first: bool | None = None
    width: int | None = None
    collapse: stats.Collapse | None = None
    defect: float | None = None
    copy_of: str | None = None
    grad_sq: list = field(default_factory=list)   # squared gradient norm per draw
    gsc: float | None = None
    operands: tuple[float | None, ...] = ()   # a merge: the norm of each operand, in the order of its preds
    operand_sizes: tuple[int, ...] = ()       # ... and its elements (a broadcast operand has fewer)


_NO_INFINITY = frozenset({ops.LAYER, ops.NONLINEARITY, ops.NORM, ops.EMBEDDING})


class Observer:
    """Reduces every value to statistics as it passes; keeps a tensor only where the backward needs it."""

    def __init__(self, keep: set[str] | None, budget: float | None = None):
        self.keep = keep                  # spine point ids (None: every measured node), candidates for an anchor
        self.budget = budget              # bytes the forward's values may take before the batch is cut
        self.used = 0.0
        self.measures: dict[str, Measure] = {}
        # The last non-zero spine point so far, kept in case the output is zero (a zero-initialised head):
        # the only value the probe holds that autograd might not.
        self.anchor: tuple[str, torch.Tensor] | None = None
        self.leaves: list[torch.Tensor] = []
        self.weights: list[tuple[str, torch.Tensor, str | None]] = []
        self.alias_sq: dict[tuple[str, str], list] = {}
        self.softmaxed: dict[int, tuple] = {}   # id(result) -> (logits, "softmax" | "log_softmax", result)
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
            if isinstance(weight, torch.Tensor) and weight.is_floating_point():
                if id(weight) not in self._defects:
                    self._defects[id(weight)] = stats.orthogonality_defect(weight)
                m.defect = self._defects[id(weight)]
                self.weights.append((node.id, weight, node.weight or node.name))
        if (node.kind == ops.NONLINEARITY and isinstance(x_in, torch.Tensor) and x_in.is_floating_point()
                and not m.nonfinite):
            m.collapse = stats.collapse(x_in, out, bool(m.units_first), node.family == ops.RELU, node.saturation)
        if not node.measured:
            return out
        handed = out
        if not out.requires_grad:
            out = out.detach().requires_grad_(True)   # e.g. embeddings of token ids: gradients start here
            self.leaves.append(out)
            handed = out.clone()
        elif node.kind == ops.INPUT:
            self.leaves.append(out)   # the backward stops at the leaves it is given: the float inputs are ones
        out.register_hook(self._sum_into(m.grad_sq))
        if (self.keep is None or node.id in self.keep) and m.norm > 0 and out.requires_grad:
            self.anchor = (node.id, out)
        return handed

    def count(self, value) -> None:
        """Add a value's bytes to what the forward has made; past the budget, stop it (the batch is cut)."""
        if self.budget is not None:
            self.used += memory.bytes_of_values([value])
            if self.used > self.budget:
                raise memory.OverBudget(self.used)

    def measure_operands(self, node: Node, fx_node: fx.Node, fetched: tuple[tuple, dict]) -> None:
        """A merge's operand norms, in the order of its preds: a residual block's dilution is read here,
        whatever the operands are (a dropout, a scaled branch, an alias of the block input)."""
        values: dict[str, float | None] = {}
        sizes: dict[str, int] = {}
        for arg, value in _operands(fx_node, fetched):
            if arg.name not in values:
                tensor = isinstance(value, torch.Tensor) and value.is_floating_point()
                values[arg.name] = stats.frobenius(value) if tensor else None
                sizes[arg.name] = value.numel() if tensor else 0
        norms = list(values.values())
        if len(norms) == len(node.preds):
            m = self.measures.setdefault(node.id, Measure())
            m.operands, m.operand_sizes = tuple(norms), tuple(sizes.values())

    def observe_alias(self, key: tuple[str, str], out):
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.register_hook(self._sum_into(self.alias_sq.setdefault(key, [])))
        return out

    @staticmethod
    def _sum_into(sink: list):
        def hook(grad: torch.Tensor | None):
            if grad is not None:  # an undefined gradient (no path to the leaves asked for) adds nothing
                sink.append(stats.frobenius(grad) ** 2)
        return hook

    def _layout(self, node: Node, out: torch.Tensor, module: nn.Module | None) -> bool:
        """Whether units are dim 1 (after convolutions) or the last dim."""
        if node.units_first is not None:
            return node.units_first
        for p in node.preds:
            pm = self.measures.get(p)
            if pm is not None and pm.units_first is not None:
                return pm.units_first
        return out.dim() >= 4


class _Interpreter(fx.Interpreter):
    """Runs a captured graph, handing every value to the observer; dropout is the identity."""

    def __init__(self, graph: Graph, observer: Observer):
        super().__init__(graph.root, graph=graph.fx_graph)
        self.captured = graph
        self.observer = observer
        self.aten = graph.tier == "export"

    def run_node(self, n: fx.Node):
        desc: Node | None = n.meta.get(META)
        key = n.meta.get(ALIAS_META)
        if key is not None:
            return self.observer.observe_alias(key, super().run_node(n))
        if desc is None:
            return super().run_node(n)
        if desc.kind == ops.DROPOUT:
            return self._no_dropout(n)
        if desc.row is not None and n.op == "call_function":
            row = ops.by_name(desc.row)
            if row.dropout_arg is not None:
                args, kwargs = ops.without_dropout(row, *self.fetch_args_kwargs_from_env(n))
                return n.target(*args, **kwargs)
        if desc.row in ops.SOFTMAX_ROWS:
            out = super().run_node(n)
            logits = self.fetch_args_kwargs_from_env(n)[0]
            if logits and isinstance(out, torch.Tensor):
                self.observer.softmaxed[id(out)] = (logits[0], desc.row, out)
            return out
        x_in = weight = None
        if desc.kind == ops.MERGE or desc.shift is not None:
            self.observer.measure_operands(desc, n, self.fetch_args_kwargs_from_env(n))
        if desc.kind in (ops.NONLINEARITY, ops.LAYER):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            if desc.kind == ops.NONLINEARITY:
                first = next((a for a in args if isinstance(a, torch.Tensor)), None)
                if first is not None:
                    x_in = first.detach().clone() if desc.inplace else first.detach()
            elif desc.weight_arg is not None:
                weight = weight_argument(_Bound(args, kwargs), desc.weight_arg)
        out = super().run_node(n)
        self.observer.count(out)
        module = self.module_of(n) if n.op == "call_module" else None
        if desc.kind == ops.LAYER and module is not None:
            # Read after the call: a parametrization or a weight-norm hook makes the weight the forward used.
            weight = ops.module_weight(module)
        out = self.observer.observe(desc, out, x_in, weight, module)
        if n.name in self.captured.written and isinstance(out, torch.Tensor):
            out = out.clone()
        return out

    def module_of(self, n: fx.Node) -> nn.Module:
        return self.module.get_submodule(str(n.target))

    def _no_dropout(self, n: fx.Node):
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        x = args[0] if args else kwargs.get("input")
        if self.aten and ops.aten_name(n.target) == "native_dropout":
            return x, torch.ones_like(x, dtype=torch.bool)
        return x


def _operands(fx_node: fx.Node, fetched: tuple[tuple, dict]) -> list[tuple[fx.Node, object]]:
    """(argument node, its value) for a node's arguments, walking the arguments and their fetched values
    side by side."""
    found: list[tuple[fx.Node, object]] = []

    def walk(arg, value):
        if isinstance(arg, fx.Node):
            found.append((arg, value))
        elif isinstance(arg, (tuple, list)) and isinstance(value, (tuple, list)):
            for a, v in zip(arg, value):
                walk(a, v)
        elif isinstance(arg, dict) and isinstance(value, dict):
            for k in arg:
                walk(arg[k], value.get(k))

    walk((fx_node.args, fx_node.kwargs), fetched)
    return found


@dataclass
class _Bound:
    """Fetched arguments, shaped like an fx node for ``weight_argument``."""

    args: tuple
    kwargs: dict


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


def run(model: nn.Module, inputs: ProbeInputs, *, target: str, path: str | None, line: int | None,
        seed: int = 0, draws: int = 1, input_source: str = "given", graph: Graph | None = None,
        fit_memory: bool = True, data_input: str | None = None, model_output: str | None = None) -> Probed:
    """Probe ``model`` on ``inputs``; the model is left exactly as it was.  ``graph``: a graph captured
    from this model before (or rebound to it), so nothing is traced again.  ``fit_memory``: cut the
    batch when the probe's estimated memory exceeds half of what is available (the report says so)."""
    device = next((p.device for p in model.parameters()), None) or _first_device(inputs)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    trainable = _trainable(model)
    asked = inputs
    facts = inputs.facts(model, data_input or inputs.data_input)
    model_output = model_output or inputs.model_output
    inputs = inputs.map(lambda x: x.detach().clone().requires_grad_(x.is_floating_point()))
    notes: list[str] = []
    with preserved(model):
        probe_mode(model)
        observer, result, graph, inputs, reduced = _forward(model, inputs, seed, graph, notes,
                                                            device if fit_memory else None, facts)
        y_norm, ys, anchor, output = _outputs(result, observer, graph, model_output)
        no_grad = _backward(observer, ys, draws, torch.Generator().manual_seed(seed + 1)) if ys else True
    _finish(observer, y_norm, draws)
    _mark_copies(observer, graph)
    report = _build_report(graph, observer, trainable, target=target, path=path, line=line, seed=seed,
                           device=device, dtype=dtype, inputs=inputs, input_source=input_source, anchor=anchor,
                           no_grad=no_grad and anchor is None,
                           reduced=(_shapes(asked), reduced) if reduced else None,
                           named=inputs.named_tensors(model), facts=facts, output=output,
                           batch=batch_size_of(model, inputs.tensors()))
    return Probed(report, graph)


def _forward(model, inputs: ProbeInputs, seed: int, graph: Graph | None, notes: list[str],
             device: torch.device | None, facts: capture.InputFacts):
    """Run the first tier that captures and runs the model: (observer, output, graph, the inputs it ran
    on, why the batch was cut or None).  ``device``: whose memory bounds the probe (None: no bound)."""
    fit = memory.Fit(inputs, device)
    fixed = inputs.positional(model)[1]
    tried_export = False
    if graph is None:
        candidates = list(capture.static_graphs(model, inputs.args, inputs.kwargs, fixed, facts))
    elif graph.fx_graph is not None:
        candidates = [("given", lambda: graph)]
    else:  # a hooks-tier graph holds no program to run: record the module chain again as it runs
        candidates = []
    for tier, build in candidates:
        if tier == "export" and tried_export:
            continue  # already tried, in place of torch.fx
        try:
            g = build()
            if tier == "fx":
                g = _see_inside_wrapped_functions(g, model, inputs, notes, facts)
            tried_export = g.tier == "export"
            if g.tier == "export":  # export recorded every value's shape: check the estimate before running
                smaller = fit.cut_before(memory.bytes_from_export(g.fx_graph), inputs)
                if smaller is not None:
                    inputs, g = smaller, build_export(model, smaller, facts)
        except Exception as exc:  # noqa: BLE001 - any capture failure means: the next tier
            notes.append(capture.describe_failure(graph.tier if tier == "given" else tier, exc))
            continue
        while True:
            observer = Observer(set(g.structure.spine), fit.cap())
            torch.manual_seed(seed)
            try:
                args = (inputs.positional(model)[0] if g.tier == "fx"
                        else inputs.leaves())  # the exported graph's placeholders, in order
                result = _Interpreter(g, observer).run(*args)
            except memory.OverBudget as over:
                inputs = fit.cut_after(over.used, inputs)
                if g.tier == "export":
                    g = build_export(model, inputs, facts)
                continue
            except Exception as exc:  # noqa: BLE001
                notes.append(capture.describe_failure(f"{g.tier}-run", exc))
                break
            g.note = "; ".join(notes) or None
            return observer, result, g, inputs, fit.why
    while True:
        observer = Observer(None, fit.cap())
        torch.manual_seed(seed)
        named = inputs.named_tensors(model)
        for name, x in named:
            observer.observe(Node(id=name, name=name, op="input", kind=ops.INPUT), x)

        def observe(node, out, x_in, weight, module, observer=observer):
            observer.count(out)  # the hooks tier sees module outputs only
            return observer.observe(node, out, x_in, weight, module)

        try:
            g, result = hooks_tier.run(model, inputs.args, inputs.kwargs, named, observe, "; ".join(notes) or None,
                                       facts, observer.softmaxed)
        except memory.OverBudget as over:
            inputs = fit.cut_after(over.used, inputs)
            continue
        except Exception as exc:
            raise ProbeError(f"forward pass failed: {one_line(exc)}") from exc
        return observer, result, g, inputs, fit.why


def _see_inside_wrapped_functions(g: Graph, model: nn.Module, inputs: ProbeInputs, notes: list[str],
                                  facts: capture.InputFacts) -> Graph:
    """torch.fx keeps a function registered with ``torch.fx.wrap`` as one opaque op (torchvision's Swin
    attention is one); when such an op reads parameters, torch.export, which traces into it, sees more.
    Custom autograd.Functions stay opaque on purpose (their own backward must run) and do not count."""
    wrapped = sorted({n.op for n in g.nodes.values() if n.kind == ops.OPAQUE and n.module is None
                      and any(p in g.nodes and g.nodes[p].kind == ops.CONSTANT for p in n.preds)
                      and not n.op.endswith(".apply")})
    if not wrapped:
        return g
    try:
        exported = build_export(model, inputs, facts)
    except Exception:  # noqa: BLE001 - keep what torch.fx saw
        return g
    if len(exported.measured_params) <= len(g.measured_params):
        return g
    notes.append(f"torch.fx keeps {', '.join(wrapped)} (torch.fx.wrap) as opaque ops that read parameters")
    return exported


def build_export(model: nn.Module, inputs: ProbeInputs, facts: capture.InputFacts | None = None) -> Graph:
    return capture.exported_graph(model, inputs.args, inputs.kwargs, facts)


def _outputs(result, observer: Observer, graph: Graph, selected: str | None = None):
    """Y: every floating-point tensor of the output (tuples, lists, dicts, dataclasses, Hugging Face
    ModelOutputs, in order) that depends on the inputs, taken together, or the part ``selected`` names.
    A tensor the model's own softmax or log-softmax made is replaced by the logits it read: the GSC
    relative to log-probabilities measures the softmax's saturation, not the network.  Returns (||Y||,
    Y's tensors, the anchor node when Y is zero, what Y is as ``report.OutputStats``)."""
    part = _select(result, selected) if selected else result
    values = [v for v in _flatten(part) if isinstance(v, torch.Tensor)]
    floats = [v for v in values if v.is_floating_point()]
    if not floats:
        kinds = ", ".join(sorted({str(v.dtype) for v in values})) or "no tensor"
        where = f"output {selected!r}" if selected else "model's output"
        raise ProbeError(f"the {where} is {kinds}, not a floating tensor; gradlint needs a "
                         "floating output (or a tuple, dict or dataclass holding one)")
    ys, before = [], None
    for y in floats:
        if not y.requires_grad:
            continue
        made = observer.softmaxed.get(id(y))
        if made is not None and made[2] is y and isinstance(made[0], torch.Tensor) and made[0].requires_grad:
            y, before = made[0], made[1]
        ys.append(y)
    output = _output_stats(ys, observer, graph, len(floats), selected, before)
    observer.softmaxed.clear()
    if output.logits and len(ys) > 1:
        # the loss reads the logits; a recurrent state or a key-value cache returned beside them is not Y
        ys, output = ys[:1], replace(output, logits_only=True)
    y_norm = math.sqrt(sum(stats.frobenius(y) ** 2 for y in ys))
    if not ys or y_norm > 0:
        return y_norm, ys, None, output
    if observer.anchor is None:
        return 0.0, [], None, output
    anchor, value = observer.anchor
    return observer.measures[anchor].norm, [value], anchor, output


def _select(result, key: str):
    """The part of a model's output that ``key`` names: dict keys and attributes by name, sequence items
    by index, dotted for nested outputs (``0.logits``)."""
    value = result
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, (tuple, list)) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        elif not isinstance(value, (torch.Tensor, dict, tuple, list)) and hasattr(value, part):
            value = getattr(value, part)
        else:
            have = (", ".join(map(str, value.keys())) if isinstance(value, dict)
                    else f"indices 0-{len(value) - 1}" if isinstance(value, (tuple, list)) else type(value).__name__)
            raise ProbeError(f"the model's output has no {part!r} (--model-output {key}; it has {have})")
    return value


_LOGIT_ROWS = ("linear", "addmm", "matmul", "bilinear")


def _output_stats(ys: list[torch.Tensor], observer: Observer, graph: Graph, tensors: int, selected: str | None,
                  before: str | None) -> OutputStats:
    """What Y is; when its first tensor is class or token logits (read through the model's own softmax,
    or made by a linear head whose units are its last dim), their softmax at initialisation."""
    base = OutputStats(tensors=tensors, selected=selected, before_softmax=before)
    if not ys:
        return base
    y = ys[0]
    head = None
    for out in graph.outputs:
        node = graph.nodes[_past_no_ops(graph, out, reshapes=True)]
        m = observer.measures.get(node.id)
        if node.kind == ops.LAYER and node.row in _LOGIT_ROWS and m is not None and m.width == y.shape[-1]:
            head = node.name
            break
    if head is None and before is None:
        return base
    found = stats.logits(y)
    if found is None:
        return base
    return replace(base, logits=True, classes=found.classes, entropy=found.entropy, init_loss=found.init_loss,
                   uniform_loss=math.log(found.classes), logit_std=found.logit_std,
                   saturated_fraction=found.saturated_fraction, head=head)


def _backward(observer: Observer, ys: list[torch.Tensor], draws: int, gen: torch.Generator) -> bool:
    """``draws`` backward passes of Gaussian cotangents u; the hooks sum each node's squared gradient.
    Each pass differentiates the scalar sum(u * Y), whose gradient at Y is exactly u (and which spares
    torch's shape checks of explicit cotangents their import of sympy).  Returns True when no gradient
    reached any recorded node."""
    try:
        for d in range(draws):
            pairing = sum((y * _cotangent(y.shape, gen, y)).sum() for y in ys)
            retain = d < draws - 1
            if observer.leaves:
                torch.autograd.grad(pairing, observer.leaves, allow_unused=True, retain_graph=retain)
            else:
                pairing.backward(retain_graph=retain)
    finally:
        observer.anchor = None
        observer.leaves.clear()
    return not any(m.grad_sq for m in observer.measures.values())


def _finish(observer: Observer, y_norm: float, draws: int) -> None:
    for m in observer.measures.values():
        if m.grad_sq and m.norm is not None:
            total = float(sum(m.grad_sq))
            if not math.isfinite(total):
                m.nonfinite = True
            m.gsc = stats.gsc_from_sum(total / draws, m.numel, m.norm, y_norm)
        m.grad_sq = []


def _cotangent(shape: torch.Size, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Standard Gaussian scaled to mean square exactly 1: still E[u u^T] = I, so still unbiased."""
    u = torch.randn(shape, generator=gen, dtype=torch.float64)
    u = u * math.sqrt(u.numel() / float((u * u).sum()))
    return u.to(device=like.device, dtype=like.dtype)


def _mark_copies(observer: Observer, graph: Graph) -> None:
    """Layers whose weight equals an earlier layer's value for value, through a different parameter.

    Weights are grouped by shape and a fingerprint of a few of their values, and compared in full only
    within a group; constant weights (zero-initialised layers) and one parameter used twice (tying)
    are not copies.
    """
    seen: dict[tuple, list[tuple[torch.Tensor, str]]] = {}
    for node_id, w, label in observer.weights:
        if w.numel() == 0:
            continue
        w = w.detach()
        flat = w.reshape(-1)
        sample = flat[:: max(1, flat.numel() // 16)][:16]
        if bool((sample == flat[0]).all()) and bool((flat == flat[0]).all()):
            continue  # a constant weight (zero-initialised): not a copy of anything
        key = (tuple(w.shape), w.dtype, w.device, tuple(sample.tolist()))
        group = seen.setdefault(key, [])
        for other, other_label in group:
            if other is w or other.data_ptr() == w.data_ptr():
                break  # the same parameter again
            if torch.equal(other, w):
                observer.measures[node_id].copy_of = other_label
                break
        else:
            group.append((w, label))
    observer.weights.clear()


def _trainable(model: nn.Module) -> dict[str, int]:
    """Trainable parameters (first name of each, tied ones once) -> elements."""
    return {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}


def _first_device(inputs: ProbeInputs) -> torch.device:
    first = next(iter(inputs.tensors()), None)
    return first.device if first is not None else torch.device("cpu")


def _flatten(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flatten(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    if hasattr(value, "__dataclass_fields__"):
        return [x for v in vars(value).values() for x in _flatten(v)]
    return []


# --------------------------------------------------------------------------- the report


def spine_point_ids(graph: Graph, observer: Observer, spine: set[str]) -> list[str]:
    """Where the GSC profile is read: float inputs, embedding outputs, depth-bearing spine layers and
    residual merges with a measured GSC, input side first."""
    merges = {m.id for m in graph.structure.merges}
    return [i for i in graph.structure.spine
            if i in spine and i in observer.measures and observer.measures[i].gsc is not None
            and graph.structure.depth.get(i) is not None
            and (graph.nodes[i].kind in (ops.INPUT, ops.LAYER, ops.EMBEDDING) or i in merges)]


def head_ids(points: list[str], observer: Observer) -> set[str]:
    """The spine points after the network pooled its positions away (a classifier after global average
    pooling or a class token): the GSC drops across the pooling, so they are left out of the fit."""
    positions = [observer.measures[i].positions or 1 for i in points]
    if max(positions, default=1) <= 1:
        return set()
    first = next((k for k, p in enumerate(positions) if p == 1 and max(positions[:k], default=1) > 1), None)
    return set(points[first:]) if first is not None else set()


def _shapes(inputs: ProbeInputs) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(s) for s in x.shape) for x in inputs.tensors())


def _build_report(graph: Graph, obs: Observer, trainable: dict[str, int], *, target, path, line, seed, device,
                  dtype, inputs: ProbeInputs, input_source, anchor, no_grad, reduced=None, named=(),
                  facts: capture.InputFacts | None = None, output: OutputStats | None = None,
                  batch: int | None = None) -> ModelReport:
    st = graph.structure
    spine = set(st.spine)
    if graph.tier == "hooks":
        # A chain of modules hides residual streams: only the inputs and the output are sure to be on the spine.
        spine = {i for i in spine if graph.nodes[i].kind == ops.INPUT or i in graph.outputs}
    points = spine_point_ids(graph, obs, spine)
    head = head_ids(points, obs)
    body = [i for i in points if i not in head]
    bypassed = _bypassed(graph)
    # concatenation skips on the spine are reported too: a run of layers that a skip joins is no plain stack
    concats = {sp.end for sp in st.splits if sp.kind == "concat"} & spine
    layers: list[Layer] = []
    for i, n in graph.nodes.items():
        m = obs.measures.get(i)
        if not (n.measured or i in concats) or m is None or m.norm is None:
            continue
        c = m.collapse
        layers.append(Layer(
            name=n.name, op=n.op, kind="concat" if i in concats else n.kind, depth=st.depth.get(i), spine=i in spine,
            gsc=m.gsc,
            preact_std=c.preact_std if c else None, relative_spread=c.relative_spread if c else None,
            sign_diversity=c.sign_diversity if c else None, nonlinearity=c.nonlinearity if c else None,
            dead_fraction=c.dead_fraction if c else None, saturated_fraction=c.saturated_fraction if c else None,
            orthogonality_defect=m.defect, width=m.width, samples=c.samples if c else None,
            rectified=c.rectified if c else None, family=n.family,
            path=n.path or path, line=n.line if n.path else line,
            weight=n.weight, copy_of=m.copy_of, bias_cancelled_by=n.bias_cancelled_by, library=n.library,
            layers=n.layers if n.kind == ops.LAYER else None, positions=m.positions,
            spine_point=i in points, head=i in head, gate=i in graph.gates,
            side=graph.nodes[st.side[i]].name if i in st.side else None, nested=i in st.nested and i in spine,
            bypassed=i in bypassed,
        ))
    blocks: list[ResidualBlock] = []
    shares = _split_shares(obs)
    for mg in st.merges:
        node = graph.nodes[mg.id]
        skip_norm = _operand_norm(obs, node, mg.skip)
        branch_norms = [_operand_norm(obs, node, b) for b in mg.branches]
        branch_norm = math.sqrt(sum(b ** 2 for b in branch_norms if b is not None))
        dilution = (skip_norm / branch_norm if skip_norm is not None and None not in branch_norms and branch_norm > 0
                    else None)
        share = ([shares.get((mg.id, b)) for b in mg.branches] if (mg.id, mg.skip) in shares else [None])
        blocks.append(ResidualBlock(
            merge=node.name, block_input=graph.nodes[mg.block_input].name if mg.block_input in graph.nodes else "input",
            skip=graph.nodes[mg.skip].name, branch=", ".join(graph.nodes[b].name for b in mg.branches),
            dilution=dilution, branch_share=sum(share) if None not in share else None, branch_depth=mg.branch_depth,
            skip_depth=mg.skip_depth, branch_op=", ".join(graph.nodes[_past_no_ops(graph, b)].op for b in mg.branches),
            zero_branch=None not in branch_norms and branch_norm == 0,
            path=node.path or path, line=node.line if node.path else line,
        ))
    shifts = []
    for i, n in graph.nodes.items():
        m = obs.measures.get(i)
        if n.shift is None or m is None or len(m.operands) != len(n.preds) or i not in st.data:
            continue
        live = [k for k, p in enumerate(n.preds) if p in st.data]
        const = [k for k, p in enumerate(n.preds) if p not in st.data and m.operands[k] is not None]
        if len(live) != 1 or not const or not m.operands[live[0]]:
            continue
        # root mean square per element, so a concatenated token compares with the data's tokens, and a
        # broadcast embedding with what it is added to
        term = math.sqrt(sum(m.operands[k] ** 2 for k in const) / max(1, sum(m.operand_sizes[k] for k in const)))
        data = m.operands[live[0]] / math.sqrt(max(1, m.operand_sizes[live[0]]))
        shifts.append(Shift(n.name, n.shift, term / data, st.depth.get(i), i in spine,
                            path=n.path or path, line=n.line if n.path else line))
    required = {sp.end for sp in st.splits if sp.kind == "merge"} & {m.id for m in st.merges}
    dist = graph_structure.effective_depth_steps(st.chain, shares, required) if st.chain else None
    if dist is None and not st.chain and st.compositional_depth == 0:
        dist = {0: 1.0}
    paths = stats.path_length(dist) if dist else None
    fit = stats.explosion_fit([st.depth[i] for i in body], [obs.measures[i].gsc for i in body])
    gsc_max = max((obs.measures[i].gsc for i in points), default=None)
    gsc_input = None
    if points:
        deepest = max(st.depth[i] for i in points)
        gsc_input = next(obs.measures[i].gsc for i in points if st.depth[i] == deepest)
    # A ReLU of an already rectified input is the identity by construction: not a collapsed domain.
    nonlin = [x for x in layers if x.kind == ops.NONLINEARITY and x.sign_diversity is not None and not x.rectified]
    defects = [x.orthogonality_defect for x in layers if x.orthogonality_defect is not None]
    coverage, unmeasured = _coverage(graph, trainable)
    summary = Summary(
        compositional_depth=st.compositional_depth,
        effective_depth=paths.mean if paths else None,
        effective_depth_p5=paths.p5 if paths else None,
        effective_depth_p95=paths.p95 if paths else None,
        gsc_max=gsc_max, gsc_input=gsc_input,
        explosion_rate=fit.rate if fit else None, explosion_fit_r2=fit.r2 if fit else None,
        min_sign_diversity=min((x.sign_diversity for x in nonlin), default=None),
        min_relative_spread=min((x.relative_spread for x in nonlin if x.relative_spread is not None), default=None),
        mean_orthogonality_defect=sum(defects) / len(defects) if defects else None,
        min_preact_std=min((x.preact_std for x in nonlin), default=None),
        spine_points=len(points), fit_points=len(body),
        gsc_anchor=graph.nodes[anchor].name if anchor else None,
        parameter_coverage=coverage,
    )
    tensors = inputs.tensors()
    roles = {graph.nodes[i].name: role for i, role in st.streams.items()}
    data_input = graph.nodes[st.data_input].name if st.data_input is not None else None
    described = tuple(ProbeInput(name, tuple(int(d) for d in t.shape), str(t.dtype).replace("torch.", ""),
                                 roles.get(name) or roles.get(name.rpartition("_")[0], "unused")) for name, t in named)
    probe = ProbeSettings(
        batch_size=batch if batch is not None else int(tensors[0].shape[0]) if tensors and tensors[0].dim() else 0,
        seed=seed, device=str(device), dtype=str(dtype).replace("torch.", ""),
        input_shapes=_shapes(inputs), input_source=input_source,
        reduced_from=reduced[0] if reduced else None, reduced_why=reduced[1] if reduced else None,
        data_input=data_input, data_input_from="user" if facts is not None and facts.data else "graph",
        inputs=described, threads=torch.get_num_threads(),
    )
    return ModelReport(
        target=target, path=path, line=line, trace=graph.tier, trace_note=graph.note, probe=probe,
        summary=summary, layers=tuple(layers), residual_blocks=tuple(blocks),
        nonfinite=tuple(graph.nodes[i].name for i in graph.nodes if i in obs.measures and obs.measures[i].nonfinite),
        output_zero=anchor is not None, no_gradient=no_grad, unmeasured=unmeasured, output=output or OutputStats(),
        shifts=tuple(shifts),
    )


def _bypassed(graph: Graph) -> set[str]:
    """Nodes a residual skip carries the data past: everything on a block's branch (back to its block
    input), and nonlinearities that read a block's sum directly (a post-activation ReLU)."""
    st = graph.structure
    found: set[str] = set()
    for m in st.merges:
        todo = list(m.branches)
        while todo:
            v = todo.pop()
            if v in found or v == m.block_input or v not in st.data:
                continue
            found.add(v)
            todo.extend(graph.live_preds(v))
    merges = {m.id for m in st.merges}
    for i, n in graph.nodes.items():
        if n.kind == ops.NONLINEARITY and i in st.data:
            live = graph.live_preds(i)
            if live and _past_no_ops(graph, live[0]) in merges:
                found.add(i)
    return found


def _operand_norm(obs: Observer, merge: Node, operand: str) -> float | None:
    """The norm of one operand of a merge, as the merge read it."""
    m = obs.measures.get(merge.id)
    if m is None or not m.operands or operand not in merge.preds:
        return None
    return m.operands[merge.preds.index(operand)]


def _past_no_ops(graph: Graph, node_id: str, reshapes: bool = False) -> str:
    """The op behind a value: dropout (the identity during the probe), identity modules and views (and
    reshapes, if asked) are passed back through, so a branch ending in Dropout names the norm or layer
    before it."""
    through = (ops.DROPOUT, ops.VIEW, ops.RESHAPE) if reshapes else (ops.DROPOUT, ops.VIEW)
    for _ in range(16):
        node = graph.nodes[node_id]
        live = graph.live_preds(node_id)
        if node.kind not in through or len(live) != 1:
            return node_id
        node_id = live[0]
    return node_id


def _split_shares(obs: Observer) -> dict[tuple[str, str], float]:
    """Each side's part of the squared gradient a split sends to its start: (split end, operand) -> share."""
    sums: dict[str, dict[str, float]] = {}
    for (end, operand), v in obs.alias_sq.items():
        if v:
            sums.setdefault(end, {})[operand] = float(sum(v))
    shares = {}
    for end, sides in sums.items():
        total = sum(sides.values())
        if math.isfinite(total) and total > 0:
            shares.update({(end, o): x / total for o, x in sides.items()})
    return shares


def _coverage(graph: Graph, trainable: dict[str, int]) -> tuple[float | None, tuple[tuple[str, int, str], ...]]:
    """The fraction of trainable parameter elements the probe measured, and the largest modules it did not,
    each with why (the reason of its largest unmeasured parameter)."""
    total = sum(trainable.values())
    if total == 0:
        return None, ()
    missed: dict[str, int] = {}
    why: dict[str, tuple[int, str]] = {}
    for name, numel in trainable.items():
        if name not in graph.measured_params:
            module = name.rsplit(".", 1)[0] if "." in name else name  # a parameter of the model itself: its name
            missed[module] = missed.get(module, 0) + numel
            reason = graph.unmeasured_why.get(name, "never read by an op the capture recognised")
            if numel > why.get(module, (-1, ""))[0]:
                why[module] = (numel, reason)
    seen = total - sum(missed.values())
    ranked = sorted(missed.items(), key=lambda kv: (-kv[1], kv[0]))[:UNMEASURED_LISTED]
    return seen / total, tuple((module, count, why[module][1]) for module, count in ranked)
