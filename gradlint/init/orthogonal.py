"""``orthogonal_``: every depth-bearing module gets a (semi-)orthogonal weight times the gain that
keeps the pre-activation scale of the nonlinearity it feeds (found on the captured graph)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .. import ops
from ..capture import Graph, static_graph
from .common import Builder, Plan, chunked_orthogonal, delta_orthogonal, fed_nonlinearity, nonlinearity_gain

_HANDLED = (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention)


def _inside(name: str, top: str) -> bool:
    """Whether module ``name`` is a proper descendant of module ``top`` ("" is the root)."""
    return name != top and (top == "" or name.startswith(top + "."))


def plan(model: nn.Module, graph: Graph | None = None) -> Plan:
    b = Builder(model)
    modules = list(model.named_modules())
    depth = [(name, m) for name, m in modules if ops.module_layers(m) > 0]
    # Submodules of a depth-bearing module (MultiheadAttention's out_proj) belong to it.
    tops: list[tuple[str, nn.Module]] = []
    for name, m in depth:
        if not any(_inside(name, t) for t, _ in tops):
            tops.append((name, m))

    if graph is None and ops.module_layers(model) == 0:  # a bare layer traces to its functional form
        try:
            graph = static_graph(model)
        except Exception:  # noqa: BLE001 - fall back to module order
            graph = None
    gains = _gains_from_graph(model, graph) if graph is not None else _gains_from_order(modules)

    tied = _tied_outside(model, tops)
    for name, m in tops:
        label = name or type(m).__name__
        if not isinstance(m, _HANDLED):
            b.skip(label, f"{type(m).__name__}: no orthogonal construction for this weight; left unchanged")
            continue
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in m.parameters(recurse=False)):
            b.skip(label, f"{type(m).__name__}: lazy module not materialised yet (run one forward first)")
            continue
        weight = getattr(m, "weight", None)
        other = tied(name, weight if isinstance(weight, torch.Tensor) else None)
        if other is not None:
            b.skip(label, f"weight is tied to '{other}', which is not a depth-bearing layer; left unchanged")
            continue
        _orthogonal(b, m, gains.get(name, 1.0))
    if graph is not None:
        _skip_functional(b, graph, [t for t, _ in tops])
    return b.build()


def _tied_outside(model: nn.Module, tops: list[tuple[str, nn.Module]]):
    """``tied(name, param)``: the name of a module outside the depth-bearing layers that shares ``param``."""
    owners: dict[int, list[str]] = {}
    for pname, p in model.named_parameters(remove_duplicate=False):
        owners.setdefault(id(p), []).append(pname)
    module_by_name = dict(model.named_modules())
    top_ids = {id(m) for _, m in tops}

    def tied(name: str, param: torch.Tensor | None) -> str | None:
        if param is None:
            return None
        for other in owners.get(id(param), []):
            mname = other.rsplit(".", 1)[0] if "." in other else ""
            if mname == name:
                continue
            owner = module_by_name.get(mname)
            if owner is None or id(owner) not in top_ids and not any(_inside(mname, t) for t, _ in tops):
                return other
        return None

    return tied


def _orthogonal(b: Builder, m: nn.Module, gain: float) -> None:
    """One depth-bearing module's weights orthogonal (scaled by ``gain``), its biases zero."""
    if isinstance(m, nn.Linear):
        s = math.sqrt(max(1.0, m.out_features / m.in_features))
        b.set(m.weight, chunked_orthogonal(m.weight.shape, m.weight.shape[0], gain * s))
        b.zero(m.bias)
    elif isinstance(m, nn.modules.conv._ConvNd):
        in_g, out_g = m.in_channels // m.groups, m.out_channels // m.groups
        b.set(m.weight, delta_orthogonal(m, gain * math.sqrt(max(1.0, out_g / in_g))))
        b.zero(m.bias)
    elif isinstance(m, (nn.RNNBase, nn.RNNCellBase)):
        for pname, p in m.named_parameters(recurse=False):
            if pname.startswith("bias"):
                b.zero(p)
            elif pname.startswith(("weight_ih", "weight_hh")):
                b.set(p, chunked_orthogonal(p.shape, m.hidden_size))
            elif p.dim() == 2:  # weight_hr (LSTM projection)
                b.set(p, chunked_orthogonal(p.shape, p.shape[0]))
    elif isinstance(m, nn.MultiheadAttention):
        if m.in_proj_weight is not None:
            b.set(m.in_proj_weight, chunked_orthogonal(m.in_proj_weight.shape, m.embed_dim))
        for p in (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight):
            if p is not None:
                b.set(p, chunked_orthogonal(p.shape, p.shape[0]))
        b.zero(m.in_proj_bias)
        b.set(m.out_proj.weight, chunked_orthogonal(m.out_proj.weight.shape, m.out_proj.weight.shape[0]))
        b.zero(m.out_proj.bias)


def _skip_functional(b: Builder, graph: Graph, handled: list[str]) -> None:
    """Functional layers (F.linear with a weight of no depth-bearing module) are named as left unchanged."""
    for node in graph.nodes.values():
        if node.kind != ops.LAYER or node.module is not None:
            continue
        owner = node.weight.rsplit(".", 1)[0] if node.weight and "." in node.weight else ""
        if node.weight is not None and any(owner == t or _inside(owner, t) for t in handled):
            continue  # MultiheadAttention's input projection: initialised with its module
        b.skip(node.name, f"functional {node.op}: its weight belongs to no depth-bearing module; left unchanged")


def _gains_from_graph(model: nn.Module, graph: Graph) -> dict[str, float]:
    gains: dict[str, float] = {}
    order = {i: k for k, i in enumerate(graph.nodes)}
    module_gain: dict[str, float] = {}  # one shared activation module (self.relu) is evaluated once
    for node in graph.nodes.values():
        if node.kind != ops.LAYER or node.module is None or node.module in gains:
            continue
        fed = fed_nonlinearity(graph, node.id, order)
        if fed is None:
            gains[node.module] = 1.0
            continue
        act = graph.nodes[fed]
        if act.module is not None and act.module in module_gain:
            gains[node.module] = module_gain[act.module]
            continue
        phi = act.phi
        if phi is None and act.module is not None:
            phi = graph.module(model, fed)
        gains[node.module] = nonlinearity_gain(phi if phi is not None else (lambda z: z))
        if act.module is not None:
            module_gain[act.module] = gains[node.module]
    return gains


def _gains_from_order(modules: list[tuple[str, nn.Module]]) -> dict[str, float]:
    """Untraceable model: the first nonlinearity module after each layer, before the next layer."""
    gains: dict[str, float] = {}
    for i, (name, m) in enumerate(modules):
        if ops.module_layers(m) == 0:
            continue
        gain = 1.0
        for later, n in modules[i + 1:]:
            if _inside(later, name):
                continue
            row = ops.of_module(n)
            if row is not None and row.kind == ops.NONLINEARITY:
                gain = nonlinearity_gain(n)
                break
            if ops.module_layers(n) > 0:
                break
        gains[name] = gain
    return gains
