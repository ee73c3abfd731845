"""Describe every node of an fx graph (torch.fx's or torch.export's) as a ``Node``, from the op table.

Both graph tiers produce an ``fx.GraphModule``: torch.fx calls modules, functions and Tensor methods;
torch.export calls ATen ops, with parameters and buffers read through ``get_attr`` and the module
path of every op in ``nn_module_stack``.  One classifier reads both, so the report names
``layers.3.self_attn.q_proj`` whichever tier ran.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.fx as fx
import torch.nn as nn

from .. import ops, sites
from . import composites
from .base import META, Node, canonical_names, parameter_names, submodule, users_of

_KNOWN_MODULES = ("torch", "_operator", "operator", "builtins", "math", "gradlint")


def arg_nodes(args) -> list[fx.Node]:
    """The graph nodes inside a (nested) argument structure, once each, in order."""
    found: list[fx.Node] = []
    fx.node.map_arg(args, found.append)
    return list(dict.fromkeys(found))


def argument(node: fx.Node, arg: ops.Arg | None):
    if arg is None:
        return None
    position, keyword = arg
    return node.args[position] if position < len(node.args) else node.kwargs.get(keyword)


def weight_argument(node, arg: ops.Arg | None):
    """A layer's weight operand; for an RNN's flat parameter list, its first hidden-to-hidden weight."""
    value = argument(node, arg)
    if isinstance(value, (list, tuple)):
        return value[1] if len(value) > 1 else None
    return value


class Classifier:
    """Classifies the nodes of one graph module captured from ``model``."""

    def __init__(self, root: nn.Module, fx_graph: fx.Graph, model: nn.Module, fixed: frozenset[str] = frozenset()):
        self.fx_graph = fx_graph
        self.fixed = fixed            # forward parameters torch.fx fixed at their defaults
        self.model = model
        self.modules = dict(root.named_modules())
        self.by_id = parameter_names(model)
        self.canon = canonical_names(model, self.by_id)
        self.params = set(self.canon)
        self.reachable: set[str] = set()
        self.counters: dict[str, int] = {}
        self.nodes: dict[str, Node] = {}

    # ------------------------------------------------------------------ per node

    def run(self) -> dict[str, Node]:
        for node in self.fx_graph.nodes:
            if node.op == "output":
                continue
            desc = self.describe(node)
            node.meta[META] = desc
            self.nodes[desc.id] = desc
        self._bias_cancellation()
        return self.nodes

    def describe(self, node: fx.Node) -> Node:
        preds = arg_nodes((node.args, node.kwargs))
        live = [p for p in preds if p.name in self.reachable]
        if node.op == "placeholder":
            target = str(node.target).lstrip("*")
            base, _, count = target.rpartition("_")
            if count.isdigit() and base in self.fixed:  # torch.fx's placeholder for a fixed argument
                return self._node(node, target, "input", ops.CONSTANT, preds)
            self.reachable.add(node.name)
            return self._node(node, target, "input", ops.INPUT, preds)
        if node.op == "get_attr":
            return self._node(node, str(node.target), "get_attr", ops.CONSTANT, preds)
        if node.op == "call_module":
            return self._module_node(node, preds, live)
        return self._function_node(node, preds, live)

    def _node(self, node: fx.Node, base: str, op: str, kind: str, preds, **facts) -> Node:
        if kind not in (ops.SHAPE, ops.CONSTANT) and any(p.name in self.reachable for p in preds):
            self.reachable.add(node.name)
        # Parameters and shape queries are never reported: they keep their own names and take none.
        name = base if kind in (ops.SHAPE, ops.CONSTANT) else self._unique(base)
        return Node(id=node.name, name=name, op=op, kind=kind, preds=tuple(p.name for p in preds), **facts)

    def _unique(self, base: str) -> str:
        n = self.counters.get(base, 0)
        self.counters[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def _module_node(self, node: fx.Node, preds, live) -> Node:
        target = str(node.target)
        m = self.modules[target]
        row = ops.of_module(m)
        facts = module_facts(m, row, target, self.model, self._param_name)
        kind = facts.pop("kind")
        if target == "_guards_fn":  # torch.export's check of input shapes: reads no values
            kind = ops.SHAPE
        return self._node(node, target, type(m).__name__, kind, preds, **facts, slope=self._module_slope(m, row),
                          phi=_LazyPhi(m) if kind == ops.NONLINEARITY else None)

    def _function_node(self, node: fx.Node, preds, live) -> Node:
        target = node.target
        aten = ops.aten_name(target) is not None
        if node.op == "call_method":
            row = ops.of_method(str(target))
            fname = str(target)
        elif aten:
            row = ops.of_aten(target)
            fname = ops.aten_name(target)
        else:
            row = ops.of_function(target)
            fname = getattr(target, "__name__", str(target))
        kind = row.kind if row is not None else (ops.OTHER if _is_known(target, node.op) else ops.OPAQUE)
        weight_node = bias_node = weight_arg = None
        layers = 0
        if kind == ops.LAYER:
            if row.needs_parameter:
                constant = [k for k, a in enumerate(node.args) if isinstance(a, fx.Node) and a.name not in self.reachable]
                if len(live) == 1 and constant:
                    weight_arg = (constant[0], "")
                    layers = 1
                else:
                    kind = ops.OTHER
            elif row.name == "rnn":
                weight_arg, layers = _rnn_weight(node)
            else:
                weight_arg, layers = row.weight_arg(aten), 1
                bias_node = argument(node, row.bias_arg(aten))
            weight_node = weight_argument(node, weight_arg)
        elif kind in (ops.NORM, ops.EMBEDDING):
            weight_node, bias_node = argument(node, row.weight_arg(aten)), argument(node, row.bias_arg(aten))
        shift = None
        if kind == ops.MERGE and len(live) < 2:
            kind = ops.OTHER  # adding a parameter or a constant shifts a value; it merges no paths
        if live and len(live) < len(preds) and row is not None and row.name in ("add", "cat"):
            # a parameter added to the data (a position embedding) or concatenated with it (a class token)
            shift = next((name for p in preds if p not in live for name in [self._shift_param(p)]
                          if name is not None), None)
        weight = self._param_name(self._param_at(weight_node))
        bias = self._param_name(self._param_at(bias_node))
        scope = _innermost_module(node)
        owner = submodule(self.model, scope)
        base = self._function_name(node, kind, fname, weight, scope, owner)
        op_name = type(owner).__name__ if base == scope and owner is not None else fname.strip("_") or node.name
        site = (sites.site_of(owner) or sites.declared_site(self.model, scope)) if owner is not None else None
        inplace = bool(row and row.inplace) or _writes_first_argument(node, aten)
        return self._node(
            node, base, op_name, kind, preds, family=row.family if row else None, layers=layers,
            row=row.name if row else None, weight=weight, weight_arg=weight_arg, bias=bias,
            module=scope if base == scope else None, units_first=_units(row), inplace=inplace,
            saturation=row.saturation if row else None, slope=self._function_slope(node, row, weight),
            keeps_zero=bool(row and row.keeps_zero), path=site[0] if site else None,
            line=site[1] if site else None, library=_library(owner) if owner is not None else None,
            phi=_function_phi(node, row) if kind == ops.NONLINEARITY else None, shift=shift,
        )

    def _function_name(self, node: fx.Node, kind: str, fname: str, weight: str | None, scope: str | None,
                       owner: nn.Module | None) -> str:
        """The module path when the op is its module's own op (torch.export's ``aten.linear`` inside a
        ``Linear``), a layer named after its weight (``self_attn.in_proj_weight`` -> ``self_attn.in_proj``),
        else ``<module path>.<op>``."""
        if owner is not None and scope is not None and not composites.traceable(owner):
            row = ops.of_module(owner)
            if row is not None and row.kind == kind and kind != ops.OTHER:
                return scope
        if kind in (ops.LAYER, ops.EMBEDDING, ops.NORM) and weight:
            if ".parametrizations." in f".{weight}":  # "fc.parametrizations.weight.original": fc's weight
                owner_path, _, rest = f".{weight}".partition(".parametrizations.")
                weight = f"{owner_path[1:]}.{rest.split('.')[0]}".lstrip(".")
            for suffix in (".weight", "_weight"):
                if weight.endswith(suffix) and len(weight) > len(suffix):
                    return weight[: -len(suffix)]
            return weight
        short = fname.strip("_") or node.name
        return f"{scope}.{short}" if scope else short

    # ------------------------------------------------------------------ parameters

    def _param_at(self, arg) -> str | None:
        """The parameter an operand reads: a get_attr of a parameter, possibly through views, or the
        parameter a parametrization (``torch.nn.utils.parametrize``) computes the weight from."""
        node = arg
        for _ in range(8):
            if not isinstance(node, fx.Node):
                return None
            if node.op == "get_attr":
                return str(node.target) if str(node.target) in self.params else None
            if node.op == "call_module" and ".parametrizations." in f".{node.target}":
                return next((f"{node.target}.{p}" for p in ("original", "original0")
                             if f"{node.target}.{p}" in self.params), None)
            if node.name in self.reachable or not node.args:
                return None
            desc = self.nodes.get(node.name)
            if desc is None or desc.kind not in (ops.VIEW, ops.RESHAPE):
                return None
            node = node.args[0]
        return None

    def _shift_param(self, operand: fx.Node) -> str | None:
        """The parameter a constant operand of an add holds: a parameter (``pos_embedding[:, :n]``), or an
        embedding table looked up with constant indices (``wpe(arange(T))``)."""
        name = self._param_at(operand)
        if name is None and operand.name in self.nodes and self.nodes[operand.name].kind == ops.EMBEDDING:
            name = self.nodes[operand.name].weight
            if name is None and operand.op == "call_module" and f"{operand.target}.weight" in self.params:
                name = f"{operand.target}.weight"
        return self._param_name(name) if name is not None else None

    def _param_name(self, value) -> str | None:
        if isinstance(value, str):
            return self.canon.get(value, value)
        if isinstance(value, torch.Tensor):
            return self.by_id.get(id(value))
        return None

    def _module_slope(self, m: nn.Module, row: ops.Op | None):
        if row is None or row.family != ops.RELU:
            return None
        if row.name == "relu":
            return 0.0
        if row.name == "leaky_relu":
            return float(m.negative_slope)
        if row.name == "prelu":
            return self._param_name(m.weight)
        return None

    def _function_slope(self, node: fx.Node, row: ops.Op | None, weight: str | None):
        if row is None or row.family != ops.RELU:
            return None
        if row.name in ("relu", "relu_"):
            return 0.0
        if row.name in ("leaky_relu", "leaky_relu_"):
            slope = argument(node, (1, "negative_slope"))
            return 0.01 if slope is None else (float(slope) if isinstance(slope, (int, float)) else None)
        if row.name == "prelu":
            return self._param_name(self._param_at(argument(node, (1, "weight"))))
        return None

    # ------------------------------------------------------------------ structure facts

    def _bias_cancellation(self) -> None:
        """A layer whose bias feeds straight (through views) into a norm that subtracts each
        channel's batch mean: the bias cancels exactly."""
        users = users_of(self.nodes)
        for n in list(self.nodes.values()):
            if n.kind != ops.LAYER or n.bias is None:
                continue
            cur = n.id
            for _ in range(8):
                nxt = [u for u in users.get(cur, []) if self.nodes[u].kind != ops.SHAPE]
                if len(nxt) != 1:
                    break
                user = self.nodes[nxt[0]]
                if user.kind == ops.VIEW:
                    cur = user.id
                    continue
                if user.kind == ops.NORM and self._per_channel(user):
                    self.nodes[n.id] = replace(n, bias_cancelled_by=user.name)
                break

    def _per_channel(self, norm: Node) -> bool:
        if norm.row is None:
            return False
        if ops.by_name(norm.row).per_channel:
            return True
        m = submodule(self.model, norm.module)
        return isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels


# ---------------------------------------------------------------------- helpers


def module_facts(m: nn.Module, row: ops.Op | None, path: str, model: nn.Module,
                 param_name: Callable[[object], str | None]) -> dict:
    """What a call of the module ``m`` at ``path`` is, whichever tier saw it (torch.fx, torch.export or
    the hooks): its kind and op-table row, the layers it stands for, its parameters' names
    (``param_name``), units layout, in-place and saturation facts, and where it was built."""
    site = sites.site_of(m) or sites.declared_site(model, path)
    return dict(kind=row.kind if row is not None else (ops.OTHER if _is_torch(m) else ops.OPAQUE),
                family=row.family if row else None, layers=ops.module_layers(m), row=row.name if row else None,
                weight=param_name(ops.module_weight(m)), bias=param_name(getattr(m, "bias", None)), module=path,
                units_first=_units(row), inplace=ops.module_is_inplace(m), saturation=ops.module_saturation(m),
                keeps_zero=bool(row and row.keeps_zero), path=site[0] if site else None,
                line=site[1] if site else None, library=_library(m))


def _units(row: ops.Op | None) -> bool | None:
    if row is None or row.units is None:
        return None
    return row.units == "first"


def _is_torch(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.")


def _is_known(target: object, op: str) -> bool:
    """A torch function, a Tensor method, a builtin: the capture knows what it does to its operands.
    A custom autograd.Function or an extension op (``torch.ops.mylib.op``) is opaque."""
    if op == "call_method":
        return True
    if isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return getattr(target, "namespace", None) in ("aten", "prims")
    if getattr(target, "_gradlint_opaque", False):
        return False
    module = getattr(target, "__module__", None) or ""
    return module.split(".")[0] in _KNOWN_MODULES


def _innermost_module(node: fx.Node) -> str | None:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    last = list(stack.values())[-1]
    path = last[0] if isinstance(last, tuple) else str(last)
    return path


def _library(module: nn.Module | None) -> str | None:
    return sites.library_site_of(module) if module is not None else None


def _writes_first_argument(node: fx.Node, aten: bool) -> bool:
    target = node.target
    if node.op == "call_method":
        return isinstance(target, str) and target.endswith("_") and not target.startswith("__")
    if aten:
        return str(getattr(target, "_overloadname", "")) != "out" and (ops.aten_name(target) or "").endswith("_")
    if target in (operator.iadd, operator.isub, operator.imul, operator.itruediv):
        return True
    return bool(node.kwargs.get("inplace", False))


def _rnn_weight(node: fx.Node) -> tuple[ops.Arg | None, int]:
    """ATen RNN ops take the initial state, then a flat list of parameters (w_ih, w_hh, b_ih, b_hh per
    layer and direction), then has_biases and num_layers: (where the list is, stacked layers)."""
    lists = [k for k, a in enumerate(node.args) if isinstance(a, (list, tuple)) and a
             and all(isinstance(x, fx.Node) for x in a)]
    if not lists:
        return None, 1
    k = lists[-1]
    rest = [x for x in node.args[k + 1:] if isinstance(x, int) and not isinstance(x, bool)]
    return (k, "params"), int(rest[0]) if rest else 1


def _function_phi(node: fx.Node, row: ops.Op | None) -> Callable | None:
    """phi of a functional nonlinearity: the op itself with its constant arguments, else the row's default."""
    rest, kwargs = node.args[1:], dict(node.kwargs)
    kwargs.pop("inplace", None)
    if not arg_nodes((rest, kwargs)) and not (row is not None and row.inplace):
        if node.op == "call_function" or isinstance(node.target, str):
            return _CallPhi(node.target, node.op == "call_method", rest, kwargs)
    return row.phi if row is not None else None


class _CallPhi:
    """``target(z, *rest, **kwargs)`` (or the Tensor method): the same ``key`` means the same function."""

    def __init__(self, target, method: bool, rest: tuple, kwargs: dict):
        self.target, self.method, self.rest, self.kwargs = target, method, rest, kwargs
        try:
            self.key = hash((target, method, rest, tuple(sorted(kwargs.items()))))
        except TypeError:
            self.key = None

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self.method:
            return getattr(z, self.target)(*self.rest, **self.kwargs)
        return self.target(z, *self.rest, **self.kwargs)


class _LazyPhi:
    """A nonlinearity module's scalar function, built (a float64 copy of the module) on first use.
    Modules without parameters or buffers with the same class and settings share a ``key``."""

    def __init__(self, module: nn.Module):
        self.module = module
        self._phi: Callable | None = None
        stateless = next(module.parameters(), None) is None and next(module.buffers(), None) is None
        self.key = hash((type(module), module.extra_repr())) if stateless else None

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self._phi is None:
            self._phi = ops.module_phi(self.module) or (lambda z: z)
        return self._phi(z)
