"""``zero_init_residual_``: the last affine of every residual branch is zeroed, so every residual block
is exactly the identity at init (torchvision's ``zero_init_residual``, Fixup, SkipInit)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import ops
from ..capture import Graph
from .common import Builder, InitError, Plan, graph_of, param, phi_at_zero, value_users

_NEEDS = "zero_init_residual_ needs residual adds x + f(x) in a model torch.fx or torch.export can capture"


def plan(model: nn.Module, graph: Graph | None = None) -> Plan:
    g = graph_of(model, graph, "zero_init_residual_", _NEEDS)
    if not g.structure.merges:
        raise InitError(f"zero_init_residual_: no residual connections found in {type(model).__name__}; "
                        "it needs adds whose operands pass through different numbers of depth-bearing "
                        "layers (x + f(x))")
    b = Builder(model)
    zeroer = _Zeroer(b, _parameter_uses(model, g))
    calls = _module_calls(g)
    for merge in g.structure.merges:
        for branch in merge.branches:
            reason = _zero_branch(model, g, branch, calls, zeroer)
            if reason is not None:
                b.skip(g.nodes[merge.id].name, f"branch '{g.nodes[branch].name}': {reason}; left unchanged")
    return b.build()


def _module_calls(g: Graph) -> dict[str, int]:
    """How many nodes call each module (a module used at several places)."""
    calls: dict[str, int] = {}
    for n in g.nodes.values():
        if n.module is not None and n.kind not in (ops.CONSTANT, ops.SHAPE):
            calls[n.module] = calls.get(n.module, 0) + 1
    return calls


def _constant_params(model: nn.Module, g: Graph, node_id: str) -> list[str]:
    """Parameters a node reads directly or through constant-side views (``x * self.gamma``)."""
    found = []
    for p in g.nodes[node_id].preds:
        cur = p
        for _ in range(8):
            n = g.nodes.get(cur)
            if n is None or cur in g.structure.reachable:
                break
            if n.kind == ops.CONSTANT:
                if param(model, n.name) is not None:
                    found.append(n.name)
                break
            if n.kind != ops.VIEW or not n.preds:
                break
            cur = n.preds[0]
    return found


def _parameter_uses(model: nn.Module, g: Graph) -> dict[int, int]:
    """How many places of the graph read each parameter: modules called, and parameters used directly."""
    count: dict[int, int] = {}
    for n in g.nodes.values():
        params: list[torch.Tensor] = []
        module = g.module(model, n.id) if n.module is not None and n.kind not in (ops.CONSTANT, ops.SHAPE) else None
        if module is not None:
            params += list(module.parameters())
        if n.kind not in (ops.CONSTANT, ops.VIEW):
            params += [param(model, name) for name in _constant_params(model, g, n.id)]
        for p in params:
            if p is not None:
                count[id(p)] = count.get(id(p), 0) + 1
    return count


class _Zeroer:
    """Zeroes the parameters of one branch's last affine, unless one of them is read elsewhere too."""

    def __init__(self, builder: Builder, param_uses: dict[int, int]):
        self.builder, self.param_uses = builder, param_uses

    def zero(self, *params: torch.Tensor | None) -> str | None:
        params = tuple(p for p in params if p is not None)
        for p in params:
            if self.param_uses.get(id(p), 0) > 1:
                name = self.builder.names.get(id(p), "a parameter")
                return f"'{name}' is also used elsewhere, so zeroing it would change more than the branch"
        for p in params:
            self.builder.zero(p)
        return None


def _zero_branch(model: nn.Module, g: Graph, node_id: str, calls: dict[str, int], z: _Zeroer) -> str | None:
    """Zero the last affine of a branch ending at ``node_id``; the reason it could not, or None."""
    steps = 0
    while True:
        steps += 1
        if steps > 10_000:
            return "branch too long to follow"
        node = g.nodes[node_id]
        if len(value_users(g, node_id)) > 1:
            return f"'{node.name}' also feeds other ops, so zeroing it would change more than the branch"
        if node.kind in (ops.INPUT, ops.CONSTANT):
            return "no affine layer (norm, layer or scale parameter) on the branch"
        live = g.live_preds(node_id)
        if node.kind == ops.MERGE or len(live) > 1:
            return f"the walk back reached '{node.name}' ({node.op}), an op with several inputs"
        module = g.module(model, node_id)
        if node.kind in (ops.LAYER, ops.NORM):
            if module is not None:
                if calls.get(node.module, 0) > 1:
                    return f"module '{node.module}' is called at several places"
                if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
                    return f"'{node.module}' ({type(module).__name__}) is a recurrent layer; zeroing it is not supported"
                if isinstance(module, nn.MultiheadAttention):
                    return z.zero(module.out_proj.weight, module.out_proj.bias)
                weight = getattr(module, "weight", None)
                if not isinstance(weight, nn.Parameter):
                    return f"norm '{node.module}' ({type(module).__name__}) has no affine parameters"
                return z.zero(weight, getattr(module, "bias", None))
            return _zero_functional(model, node, z)
        if node.kind == ops.NONLINEARITY:
            phi = node.phi if node.phi is not None else module
            if phi is not None and isinstance(phi, nn.Module):
                phi = ops.module_phi(phi)
            if phi_at_zero(phi) != 0.0:
                return f"'{node.name}' ({node.op}) does not map 0 to 0"
        elif node.kind == ops.SCALE:
            factors = _constant_params(model, g, node_id)
            constant_preds = [p for p in node.preds if p not in g.structure.reachable]
            if not live or len(constant_preds) > 1:
                return f"'{node.name}' ({node.op}) is not a scaling by one factor"
            if constant_preds:
                if node.row != "mul" or not factors:
                    return (f"'{node.name}' multiplies by something that is not a parameter" if node.row == "mul"
                            else f"'{node.name}' ({node.op}) divides by something that is not a number")
                return z.zero(param(model, factors[0]))
            # scaling by a Python number keeps zero at zero
        elif not node.keeps_zero or node.row == "dropout" and isinstance(module, (nn.AlphaDropout,
                                                                                nn.FeatureAlphaDropout)):
            return f"'{node.name}' ({node.op}) is not known to keep zero at zero"
        if not live:
            return "no affine layer (norm, layer or scale parameter) on the branch"
        node_id = live[0]


def _zero_functional(model: nn.Module, node, z: _Zeroer) -> str | None:
    """A functional layer or norm at the end of a branch: zero its weight (and bias) parameters."""
    if node.weight is None:
        return f"'{node.name}' ({node.op}) has a weight that is not a parameter"
    return z.zero(param(model, node.weight), param(model, node.bias))
