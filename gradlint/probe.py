"""The probe: one forward recording statistics per node, one backward of a Gaussian cotangent.

Graph capture is torch.fx (an ``fx.Interpreter`` subclass records each node); when tracing or
interpreting fails, forward hooks on modules record the same statistics, treating the modules as a
chain.  The result is a frozen ``ModelReport`` of plain numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from . import ops, sites, stats
from .graph import GraphNode, Structure, analyse
from .report import Layer, ModelReport, ProbeSettings, ResidualBlock, Summary
from .errors import ProbeError, one_line
from .paths import display_path, is_library_file
from .state import preserved

_FRAME = re.compile(r'File "(.+?)", line (\d+)')
_PARAM_NAMES: dict[int, str] = {}         # id(parameter) -> qualified name, for the probe in progress



@dataclass
class Record:
    """What the probe learns about one graph node.  Holds a tensor only until the backward is done."""

    id: str
    name: str
    op: str
    kind: str
    preds: list[str]
    family: str | None = None
    depth_bearing: bool = False
    weight_arg: int | None = None            # position of the weight among a functional layer's args
    is_input: bool = False
    is_merge: bool = False
    measured: bool = False
    channels_first: bool | None = None
    path: str | None = None
    line: int | None = None
    norm: float | None = None
    tensor: torch.Tensor | None = None
    collapse: stats.Collapse | None = None
    defect: float | None = None
    width: int | None = None
    nonfinite: bool = False
    gsc: float | None = None
    weight_name: str | None = None           # the parameter behind a layer's weight
    weight_ref: torch.Tensor | None = None   # that weight, until copies are compared
    copy_of: str | None = None               # an earlier layer's weight this one equals (not the same parameter)
    bias_cancelled_by: str | None = None     # the batch-type norm that directly follows this layer's bias


@dataclass
class Capture:
    records: dict[str, Record]
    outputs: list[str]                       # record ids whose values make up Y
    output_values: list[torch.Tensor]
    trace: str
    trace_note: str | None = None
    order: list[str] = field(default_factory=list)
    # (merge id, "skip" | "branch") -> the block input's alias on that side (a tensor until the backward)
    aliases: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)   # merge id -> branch share


# --------------------------------------------------------------------------- source lines


def source_of(stack_trace: str | None) -> tuple[str | None, int | None]:
    """The innermost frame of the stack trace that is user code (not torch, not gradlint)."""
    if not stack_trace:
        return None, None
    best = (None, None)
    for path, line in _FRAME.findall(stack_trace):
        if is_library_file(path):
            continue
        best = (display_path(path), int(line))
    return best


# --------------------------------------------------------------------------- fx capture


class _Tracer(fx.Tracer):
    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, ops.DEPTH_MODULES + ops.NORM_MODULES) or super().is_leaf_module(m, qualname)


def trace_fx(model: nn.Module) -> fx.GraphModule:
    tracer = _Tracer()
    graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph, model.__class__.__name__)


def _arg_nodes(args) -> list[fx.Node]:
    """The graph nodes inside a (nested) argument structure, once each, in order."""
    found: list[fx.Node] = []
    fx.node.map_arg(args, lambda n: found.append(n))
    return list(dict.fromkeys(found))


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    return _arg_nodes((node.args, node.kwargs))


def _fx_records(gm: fx.GraphModule) -> tuple[dict[str, Record], dict[fx.Node, Record], set[fx.Node]]:
    """Static classification of every node; returns records by id, by node, and nodes to clone."""
    modules = dict(gm.named_modules())
    reachable: set[fx.Node] = set()
    records: dict[str, Record] = {}
    by_node: dict[fx.Node, Record] = {}
    counters: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "output":
            continue
        preds = _tensor_args(node)
        if node.op == "placeholder" or any(p in reachable for p in preds):
            reachable.add(node)
        kind, op_name, family, weight_arg = "other", str(node.target), None, None
        if node.op == "placeholder":
            kind, op_name = "input", "input"
        elif node.op == "get_attr":
            kind, op_name = "constant", "get_attr"
        elif node.op == "call_module":
            mod = modules[node.target]
            kind, op_name = ops.module_kind(mod), type(mod).__name__
            family = ops.nonlinear_family_of_module(mod)
        elif node.op in ("call_function", "call_method"):
            fn = node.target
            op_name = fn if isinstance(fn, str) else getattr(fn, "__name__", str(fn))
            live = [p for p in preds if p in reachable]
            if node.op == "call_function":
                if fn in ops.DEPTH_FUNCTIONS:
                    kind, weight_arg = "layer", 2 if fn is F.bilinear else 1
                elif fn in ops.MATMUL_FUNCTIONS and len(live) == 1 and len(preds) >= 2:
                    kind, weight_arg = "layer", _weight_position(node, reachable)
                elif fn in ops.NONLINEAR_FUNCTIONS:
                    kind, family = "nonlinearity", ops.NONLINEAR_FUNCTIONS[fn]
                elif fn in ops.NORM_FUNCTIONS:
                    kind = "norm"
                elif fn in ops.MERGE_FUNCTIONS and len(live) >= 2:
                    kind = "merge"
            else:
                if fn in ops.MATMUL_METHODS and len(live) == 1 and len(preds) >= 2:
                    kind, weight_arg = "layer", _weight_position(node, reachable)
                elif fn in ops.NONLINEAR_METHODS:
                    kind, family = "nonlinearity", ops.NONLINEAR_METHODS[fn]
                elif fn in ops.MERGE_METHODS and len(live) >= 2:
                    kind = "merge"
        name = _node_name(node, op_name, counters)
        path, line = source_of(node.stack_trace)
        if node.op == "call_module":
            path, line = sites.site_of(modules[node.target]) or (path, line)
        rec = Record(
            id=node.name, name=name, op=op_name, kind=kind, family=family,
            preds=[p.name for p in preds], depth_bearing=kind == "layer", weight_arg=weight_arg,
            is_input=node.op == "placeholder", is_merge=kind == "merge",
            measured=kind in ("input", "layer", "nonlinearity", "norm", "merge", "embedding"),
            path=path, line=line,
        )
        records[rec.id] = rec
        by_node[node] = rec
    for node, rec in by_node.items():
        if rec.kind == "layer" and node.op == "call_module":
            norm = _bias_cancelled_by(node, modules)
            rec.bias_cancelled_by = by_node[norm].name if norm is not None else None
    return records, by_node, _nodes_to_clone(gm)


def _bias_cancelled_by(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The batch or instance norm a layer's output goes straight into, when the layer has a bias:
    that norm subtracts each channel's mean over the batch, so the bias cancels exactly."""
    if not isinstance(getattr(modules[node.target], "bias", None), torch.Tensor):
        return None
    cur = node
    for _ in range(8):
        users = list(cur.users)
        if len(users) != 1:
            return None
        (user,) = users
        if _is_view(user):
            cur = user
            continue
        if user.op == "call_module" and _per_channel_norm(modules[user.target]):
            return user
        return None
    return None


def _per_channel_norm(m: nn.Module) -> bool:
    if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
        return True
    return isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels


def _weight_position(node: fx.Node, reachable: set[fx.Node]) -> int | None:
    """The argument of a matmul that does not depend on the inputs: its weight."""
    for i, a in enumerate(node.args):
        if isinstance(a, fx.Node) and a not in reachable:
            return i
    return None


def _node_name(node: fx.Node, op_name: str, counters: dict[str, int]) -> str:
    """A line-independent identity: the module path for modules, ``<module path>.<op>`` for functions."""
    if node.op == "call_module":
        base = str(node.target)
    elif node.op == "placeholder":
        base = str(node.target).lstrip("*")
    else:
        stack = node.meta.get("nn_module_stack") or {}
        prefix = ""
        if stack:
            last = list(stack.values())[-1]
            prefix = last[0] if isinstance(last, tuple) else str(last)
        short = op_name.strip("_") or node.name
        base = f"{prefix}.{short}" if prefix else short
    n = counters.get(base, 0)
    counters[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _is_inplace(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return ops.module_is_inplace(modules[node.target])
    if node.op == "call_function":
        return node.target in ops.INPLACE_FUNCTIONS or bool(node.kwargs.get("inplace", False))
    if node.op == "call_method":
        return isinstance(node.target, str) and node.target.endswith("_") and not node.target.startswith("__")
    return False


def _is_view(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in ops.VIEW_FUNCTIONS
    return node.op == "call_method" and node.target in ops.VIEW_METHODS


def _nodes_to_clone(gm: fx.GraphModule) -> set[fx.Node]:
    """Nodes whose value (or a view of it) is later changed in place: the probe hands on a copy."""
    modules = dict(gm.named_modules())

    def written(node: fx.Node, seen: int = 0) -> bool:
        for user in node.users:
            if _is_inplace(user, modules) and user.args and user.args[0] is node:
                return True
            if _is_view(user) and seen < 8 and written(user, seen + 1):
                return True
        return False

    return {n for n in gm.graph.nodes if n.op != "output" and written(n)}


class _FxRecorder(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule, by_node: dict[fx.Node, Record], clone: set[fx.Node],
                 records: dict[str, Record], aliases: dict[fx.Node, tuple[str, str]]):
        super().__init__(gm)
        self.by_node = by_node
        self.clone = clone
        self.records = records
        self.modules = dict(gm.named_modules())
        self.alias_nodes = aliases
        self.aliases: dict[tuple[str, str], torch.Tensor] = {}

    def run_node(self, n: fx.Node):
        if n in self.alias_nodes:
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and out.requires_grad:
                self.aliases[self.alias_nodes[n]] = out
            return out
        rec = self.by_node.get(n)
        x_in = None
        weight = None
        if rec is not None and rec.kind in ("nonlinearity", "layer"):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if rec.kind == "nonlinearity" and tensors:
                x_in = tensors[0].detach()
                if _is_inplace(n, self.modules):
                    x_in = x_in.clone()
            if rec.kind == "layer":
                if n.op == "call_module":
                    weight = ops.weight_of(self.modules[n.target])
                elif rec.weight_arg is not None and rec.weight_arg < len(args):
                    weight = args[rec.weight_arg]
                    weight = weight if isinstance(weight, torch.Tensor) else None
        out = super().run_node(n)
        if rec is None or not isinstance(out, torch.Tensor):
            return out
        module = self.modules.get(n.target) if n.op == "call_module" else None
        out = _observe(rec, out, x_in, weight, self.records, module, n.target)
        if n in self.clone:
            out = out.clone()
        return out


def _observe(rec: Record, out: torch.Tensor, x_in, weight, records: dict[str, Record],
             module: nn.Module | None, fn) -> torch.Tensor:
    """Fill a record from a node's output; returns the tensor to hand on (a grad leaf if needed)."""
    rec.channels_first = _layout(rec, out, records, module)
    if not out.is_floating_point():
        return out
    rec.norm = stats.frobenius(out)
    rec.nonfinite = not bool(torch.isfinite(out).all())
    if rec.kind == "layer":
        rec.width = int(out.shape[1] if rec.channels_first and out.dim() >= 3 else out.shape[-1]) if out.dim() else None
        if weight is not None and weight.is_floating_point():
            rec.defect = stats.orthogonality_defect(weight)
            rec.weight_ref = weight
            rec.weight_name = _PARAM_NAMES.get(id(weight))
    if rec.kind == "nonlinearity" and x_in is not None and x_in.is_floating_point() and not rec.nonfinite:
        if bool(torch.isfinite(x_in).all()):
            sat = ops.saturation_bounds(module if module is not None else fn)
            rec.collapse = stats.collapse(x_in, out, rec.channels_first, rec.family == ops.RELU, sat)
    if rec.measured:
        if not out.requires_grad and out.grad_fn is None:
            out = out.detach().requires_grad_(True)
        rec.tensor = out
    return out


def _layout(rec: Record, out: torch.Tensor, records: dict[str, Record], module: nn.Module | None) -> bool:
    """Whether units are dim 1 (after convolutions) or the last dim."""
    if module is not None:
        if isinstance(module, ops.CHANNELS_FIRST_MODULES):
            return True
        if isinstance(module, ops.CHANNELS_LAST_MODULES):
            return False
        if isinstance(module, nn.BatchNorm1d):
            return out.dim() == 3
    for p in rec.preds:
        pr = records.get(p)
        if pr is not None and pr.channels_first is not None and pr.kind != "constant":
            return pr.channels_first
    return out.dim() >= 4


@dataclass
class StaticGraph:
    """A traced model classified node by node, with its structure, before anything runs."""

    gm: fx.GraphModule
    records: dict[str, Record]
    by_node: dict[fx.Node, Record]
    structure: Structure

    def module_of(self, record_id: str) -> nn.Module | None:
        """The module a ``call_module`` node calls, else None."""
        node = next((n for n, r in self.by_node.items() if r.id == record_id), None)
        if node is None or node.op != "call_module":
            return None
        return self.gm.get_submodule(str(node.target))


def static_graph(model: nn.Module) -> StaticGraph:
    """Trace ``model`` (as the probe does) and analyse its structure without running it.

    Raises whatever torch.fx raises when the model cannot be traced.  The returned graph module
    shares its submodules and parameters with ``model``.
    """
    gm = trace_fx(model)
    records, by_node, _ = _fx_records(gm)
    return StaticGraph(gm, records, by_node, _static_structure(gm, records))


def _static_structure(gm: fx.GraphModule, records: dict[str, Record]) -> Structure:
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    out_ids: list[str] = []
    fx.node.map_arg(out_node.args, lambda n: out_ids.append(n.name))
    nodes = [GraphNode(r.id, r.preds, r.depth_bearing, r.is_input, r.is_merge) for r in records.values()]
    return analyse(nodes, list(dict.fromkeys(out_ids)))


def _alias(t):
    """A separate autograd node for one side of a residual block: its gradient is that side's share.

    A view, not a copy: a branch that writes its input in place must still change what the skip sees.
    """
    return t.view_as(t) if isinstance(t, torch.Tensor) else t


def _split_block_inputs(gm: fx.GraphModule, structure: Structure,
                        written: set[fx.Node] = frozenset()) -> dict[fx.Node, tuple[str, str]]:
    """Give the skip side and the branch side of every residual block their own alias of the block input.

    A user of the block input belongs to the side whose operand it reaches.  A block where one user
    reaches both sides, or whose block input is written in place (``written``: then the skip reads what
    the branch wrote, and no split can separate them), is left alone and gets no branch share.
    Returns alias node -> (merge id, side).
    """
    nodes = {n.name: n for n in gm.graph.nodes}
    position = {n: k for k, n in enumerate(gm.graph.nodes)}
    aliases: dict[fx.Node, tuple[str, str]] = {}
    for m in structure.merges:
        bi, merge = nodes.get(m.block_input), nodes.get(m.id)
        if bi is None or merge is None or bi in written:
            continue
        reach_skip = _ancestors(nodes[m.skip], bi, position)
        reach_branch = set().union(*(_ancestors(nodes[b], bi, position) for b in m.branches))
        sides: dict[str, list[fx.Node]] = {"skip": [], "branch": []}
        ambiguous = False
        for user in list(bi.users):
            on_skip = user in reach_skip or (user is merge and m.skip == bi.name)
            on_branch = user in reach_branch or (user is merge and bi.name in m.branches)
            if on_skip and on_branch:
                ambiguous = True
            elif on_skip or on_branch:
                sides["skip" if on_skip else "branch"].append(user)
        if ambiguous or not sides["skip"] or not sides["branch"]:
            continue
        for side, users in sides.items():
            with gm.graph.inserting_after(bi):
                alias = gm.graph.call_function(_alias, (bi,))
            for user in users:
                user.replace_input_with(bi, alias)
            aliases[alias] = (m.id, side)
    return aliases


def _ancestors(node: fx.Node, stop: fx.Node, position: dict[fx.Node, int]) -> set[fx.Node]:
    """``node`` and every node after ``stop`` from which ``node`` can be reached."""
    seen = {node}
    todo = [node]
    while todo:
        for p in todo.pop().all_input_nodes:
            if p not in seen and position.get(p, -1) > position[stop]:
                seen.add(p)
                todo.append(p)
    return seen


def capture_fx(gm: fx.GraphModule, inputs: tuple) -> Capture:
    records, by_node, clone = _fx_records(gm)
    aliases = _split_block_inputs(gm, _static_structure(gm, records), clone)
    recorder = _FxRecorder(gm, by_node, clone, records, aliases)
    result = recorder.run(*inputs)
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    out_ids: list[str] = []
    fx.node.map_arg(out_node.args, lambda n: out_ids.append(n.name))
    values = [v for v in _flatten(result) if isinstance(v, torch.Tensor)]
    outputs = [i for i in dict.fromkeys(out_ids) if records[i].tensor is not None or records[i].norm is not None]
    return Capture(records, outputs, values, "fx", order=list(records), aliases=recorder.aliases)


def _flatten(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flatten(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    if hasattr(value, "__dataclass_fields__") or hasattr(value, "_fields"):
        return [x for v in (value if hasattr(value, "_fields") else vars(value).values()) for x in _flatten(v)]
    return []


# --------------------------------------------------------------------------- hooks capture


def capture_hooks(model: nn.Module, inputs: tuple, note: str) -> Capture:
    """Record leaf modules with forward hooks; the graph is taken to be a chain in execution order."""
    records: dict[str, Record] = {}
    order: list[str] = []
    last: list[str] = []
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor):
            rec = Record(id=f"input_{i}", name=f"input_{i}", op="input", kind="input", preds=[],
                         is_input=True, measured=True)
            rec.channels_first = x.dim() >= 4
            if x.is_floating_point():
                rec.norm = stats.frobenius(x)
                rec.tensor = x
            records[rec.id] = rec
            order.append(rec.id)
            last.append(rec.id)
    leaves: list[tuple[str, nn.Module]] = []
    skip_under: list[str] = []
    for name, m in model.named_modules():
        if not name or any(name.startswith(s + ".") for s in skip_under):
            continue
        kind = ops.module_kind(m)
        if kind != "other" or not list(m.children()):
            leaves.append((name, m))
            if list(m.children()):
                skip_under.append(name)
    calls: dict[str, int] = {}
    pending: dict[int, torch.Tensor] = {}

    def pre_hook(name):
        def hook(module, args):
            if ops.module_kind(module) == "nonlinearity" and args and isinstance(args[0], torch.Tensor):
                x = args[0].detach()
                pending[id(module)] = x.clone() if ops.module_is_inplace(module) else x
        return hook

    def post_hook(name):
        def hook(module, args, out):
            rest = None
            if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
                out, rest = out[0], out[1:]  # e.g. nn.MultiheadAttention: (output, weights)
            if not isinstance(out, torch.Tensor):
                return None
            n = calls.get(name, 0)
            calls[name] = n + 1
            kind = ops.module_kind(module)
            site = sites.site_of(module) or (None, None)
            rec = Record(id=f"{name}#{n}", name=name if n == 0 else f"{name}#{n}", op=type(module).__name__,
                         kind=kind, family=ops.nonlinear_family_of_module(module), preds=list(last),
                         depth_bearing=kind == "layer", measured=kind != "other", path=site[0], line=site[1])
            records[rec.id] = rec
            order.append(rec.id)
            last[:] = [rec.id]
            weight = ops.weight_of(module) if kind == "layer" else None
            observed = _observe(rec, out, pending.pop(id(module), None), weight, records, module, None)
            observed = observed.clone() if observed.is_floating_point() else observed
            return observed if rest is None else (observed, *rest)
        return hook

    handles = []
    try:
        for name, m in leaves:
            handles.append(m.register_forward_pre_hook(pre_hook(name)))
            handles.append(m.register_forward_hook(post_hook(name)))
        result = model(*inputs)
    finally:
        for h in handles:
            h.remove()
    values = [v for v in _flatten(result) if isinstance(v, torch.Tensor)]
    return Capture(records, list(last), values, "hooks", note, order=order)


# --------------------------------------------------------------------------- the probe


def run(model: nn.Module, inputs: tuple, *, target: str, path: str | None, line: int | None,
        seed: int = 0, draws: int = 1, input_source: str = "given") -> ModelReport:
    """Probe ``model`` on ``inputs`` and return the frozen report.  The model is left as it was."""
    device = next((p.device for p in model.parameters()), None) or _first_device(inputs)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    inputs = tuple(x.detach().clone().requires_grad_(x.is_floating_point()) if isinstance(x, torch.Tensor) else x
                   for x in inputs)
    _PARAM_NAMES.clear()
    _PARAM_NAMES.update({id(p): n for n, p in model.named_parameters()})
    with preserved(model):
        model.train()
        note = None
        try:
            gm = trace_fx(model)
        except Exception as exc:  # noqa: BLE001 - any tracing failure means: fall back
            gm, note = None, f"torch.fx could not trace the model ({one_line(exc)})"
        torch.manual_seed(seed)
        cap = None
        if gm is not None:
            try:
                cap = capture_fx(gm, inputs)
            except Exception as exc:  # noqa: BLE001
                note = f"the traced graph did not run ({one_line(exc)})"
                torch.manual_seed(seed)
        if cap is None:
            try:
                cap = capture_hooks(model, inputs, note or "")
            except Exception as exc:
                raise ProbeError(f"forward pass failed: {one_line(exc)}") from exc
        if not cap.output_values or not all(v.is_floating_point() for v in cap.output_values):
            kinds = ", ".join(sorted({str(v.dtype) for v in cap.output_values})) or "no tensor"
            raise ProbeError(f"the model's output is {kinds}, not a floating tensor; gradlint needs a "
                             "floating output (or a tuple or dict of them)")
        structure = _structure(cap)
        _mark_copies(cap)
        gen = torch.Generator().manual_seed(seed + 1)
        summary_anchor, no_grad = _backward(cap, structure, draws, gen)
    return _build_report(cap, structure, target=target, path=path, line=line, seed=seed, device=device, dtype=dtype,
                         inputs=inputs, input_source=input_source, anchor=summary_anchor, no_grad=no_grad)


def _mark_copies(cap: Capture) -> None:
    """Layers whose weight equals an earlier layer's value for value, through a different parameter.

    Only weights of the same shape are compared, each against one representative per distinct value;
    constant weights (zero-initialised layers) and one parameter used twice (tying) are not copies.
    """
    seen: dict[tuple, list[tuple[torch.Tensor, str]]] = {}
    for i in cap.order:
        r = cap.records[i]
        w, r.weight_ref = r.weight_ref, None
        if w is None or w.numel() == 0:
            continue
        w = w.detach()
        if bool((w == w.reshape(-1)[0]).all()):
            continue
        same_shape = seen.setdefault((tuple(w.shape), w.dtype, w.device), [])
        for other, label in same_shape:
            if other is w or other.data_ptr() == w.data_ptr():
                break  # the same parameter again
            if torch.equal(other, w):
                r.copy_of = label
                break
        else:
            same_shape.append((w, r.weight_name or r.name))


def _first_device(inputs: tuple) -> torch.device:
    for x in inputs:
        if isinstance(x, torch.Tensor):
            return x.device
    return torch.device("cpu")


def _cotangent(shape: torch.Size, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Standard Gaussian scaled to mean square exactly 1: still E[u u^T] = I, so still unbiased."""
    u = torch.randn(shape, generator=gen, dtype=torch.float64)
    u = u * math.sqrt(u.numel() / float((u * u).sum()))
    return u.to(device=like.device, dtype=like.dtype)


def _backward(cap: Capture, structure: Structure, draws: int, gen: torch.Generator) -> tuple[str | None, bool]:
    """GSC at every measured node.  Returns (anchor record id if not the output, no-gradient flag)."""
    recs = [r for r in cap.records.values() if r.tensor is not None and r.tensor.requires_grad]
    ys = [y for y in cap.output_values if y.requires_grad]
    y_norm = math.sqrt(sum(stats.frobenius(y) ** 2 for y in cap.output_values))
    anchor = None
    if not ys or not recs:
        _release(cap)
        return None, True
    if y_norm == 0.0:
        anchor = _anchor(cap, structure)
        if anchor is None:
            _release(cap)
            return None, False
        ys = [cap.records[anchor].tensor]
        y_norm = cap.records[anchor].norm or 0.0
    sides = list(cap.aliases)
    tensors = [r.tensor for r in recs] + [cap.aliases[k] for k in sides]
    sums = [0.0] * len(tensors)
    used = [False] * len(tensors)
    for d in range(draws):
        us = [_cotangent(y.shape, gen, y) for y in ys]
        grads = torch.autograd.grad(ys, tensors, us, allow_unused=True, retain_graph=d < draws - 1)
        for k, g in enumerate(grads):
            if g is not None:
                used[k] = True
                sums[k] += float(g.detach().double().pow(2).sum())
                if k < len(recs) and not bool(torch.isfinite(g).all()):
                    recs[k].nonfinite = True
    for k, r in enumerate(recs):
        if used[k] and r.norm is not None:
            r.gsc = stats.gsc_from_sum(sums[k] / draws, r.tensor.numel(), r.norm, y_norm)
    # Branch share: the branch's part of the squared gradient the block sends to its input.
    side_sum = {key: sums[len(recs) + k] for k, key in enumerate(sides)}
    for merge in {m for m, _ in sides}:
        skip, branch = side_sum.get((merge, "skip")), side_sum.get((merge, "branch"))
        if skip is not None and branch is not None and math.isfinite(skip + branch) and skip + branch > 0:
            cap.shares[merge] = branch / (skip + branch)
    _release(cap)
    return anchor, False


def _anchor(cap: Capture, structure: Structure) -> str | None:
    """The spine point nearest the output whose value is non-zero (for a zero-initialised head)."""
    points = [i for i in reversed(structure.spine)
              if cap.records[i].tensor is not None and (cap.records[i].norm or 0.0) > 0
              and cap.records[i].tensor.requires_grad]
    return points[0] if points else None


def _release(cap: Capture) -> None:
    for r in cap.records.values():
        r.tensor = None
    cap.output_values = []
    cap.aliases = {}


def _structure(cap: Capture) -> Structure:
    nodes = [GraphNode(r.id, r.preds, r.depth_bearing, r.is_input, r.is_merge) for r in
             (cap.records[i] for i in cap.order)]
    return analyse(nodes, cap.outputs)


def _build_report(cap: Capture, st: Structure, *, target, path, line, seed, device, dtype, inputs, input_source, anchor,
                  no_grad) -> ModelReport:
    spine = set(st.spine)
    if cap.trace == "hooks":
        # A chain of modules hides residual streams: only the inputs and the output are sure to be on the spine.
        spine = {i for i in spine if cap.records[i].is_input or i == cap.order[-1]}
    layers: list[Layer] = []
    for i in cap.order:
        r = cap.records[i]
        if not r.measured or r.norm is None and r.kind != "input":
            continue
        if r.kind == "input" and r.norm is None:
            continue  # integer (token) inputs carry no gradient
        c = r.collapse
        layers.append(Layer(
            name=r.name, op=r.op, kind=r.kind, depth=st.depth.get(i), spine=i in spine, gsc=r.gsc,
            preact_std=c.preact_std if c else None, relative_spread=c.relative_spread if c else None,
            sign_diversity=c.sign_diversity if c else None, nonlinearity=c.nonlinearity if c else None,
            dead_fraction=c.dead_fraction if c else None, saturated_fraction=c.saturated_fraction if c else None,
            orthogonality_defect=r.defect, width=r.width, samples=c.samples if c else None,
            rectified=c.rectified if c else None, family=r.family,
            path=r.path or path, line=r.line if r.path else line,
            weight=r.weight_name, copy_of=r.copy_of, bias_cancelled_by=r.bias_cancelled_by,
        ))
    blocks: list[ResidualBlock] = []
    merge_ids = set()
    for m in st.merges:
        merge_ids.add(m.id)
        rec = cap.records[m.id]
        skip_norm = cap.records[m.skip].norm
        branch_norm = math.sqrt(sum((cap.records[b].norm or 0.0) ** 2 for b in m.branches))
        dilution = skip_norm / branch_norm if skip_norm is not None and branch_norm > 0 else None
        blocks.append(ResidualBlock(
            merge=rec.name, block_input=cap.records[m.block_input].name if m.block_input in cap.records else "input",
            skip=cap.records[m.skip].name, branch=", ".join(cap.records[b].name for b in m.branches),
            dilution=dilution, branch_share=cap.shares.get(m.id), branch_depth=m.branch_depth,
            skip_depth=m.skip_depth, branch_op=", ".join(cap.records[b].op for b in m.branches),
            path=rec.path or path, line=rec.line if rec.path else line,
        ))
    paths = None
    if all(b.branch_share is not None for b in blocks):
        outside = st.compositional_depth - sum(m.branch_depth for m in st.merges)
        paths = stats.effective_depth(outside, [(b.skip_depth, b.branch_depth, b.branch_share) for b in blocks])
    # Spine points: float inputs, embedding outputs, depth-bearing spine layers, residual merges.
    points = [(cap.records[i], st.depth.get(i)) for i in st.spine
              if i in spine and cap.records[i].gsc is not None and st.depth.get(i) is not None
              and (cap.records[i].kind in ("input", "layer", "embedding") or i in merge_ids)]
    fit = stats.explosion_fit([d for _, d in points], [r.gsc for r, _ in points])
    gsc_max = max((r.gsc for r, _ in points), default=None)
    gsc_input = None
    if points:
        deepest = max(d for _, d in points)
        gsc_input = next(r.gsc for r, d in points if d == deepest)
    # A ReLU of an already rectified input is the identity by construction: not a collapsed domain.
    nonlin = [x for x in layers if x.kind == "nonlinearity" and x.sign_diversity is not None and not x.rectified]
    defects = [x.orthogonality_defect for x in layers if x.orthogonality_defect is not None]
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
        spine_points=len(points),
        gsc_anchor=cap.records[anchor].name if anchor else None,
    )
    first = next((x for x in inputs if isinstance(x, torch.Tensor)), None)
    probe = ProbeSettings(
        batch_size=int(first.shape[0]) if first is not None and first.dim() else 0,
        seed=seed, device=str(device), dtype=str(dtype).replace("torch.", ""),
        input_shapes=tuple(tuple(int(s) for s in x.shape) for x in inputs if isinstance(x, torch.Tensor)),
        input_source=input_source,
    )
    y_zero = anchor is not None
    return ModelReport(
        target=target, path=path, line=line, trace=cap.trace, trace_note=cap.trace_note, probe=probe,
        summary=summary, layers=tuple(layers), residual_blocks=tuple(blocks),
        nonfinite=tuple(cap.records[i].name for i in cap.order if cap.records[i].nonfinite),
        output_zero=y_zero, no_gradient=no_grad,
    )
