"""Graph capture in tiers, one contract: torch.fx first, then torch.export, module hooks last.

Every tier produces a ``Graph`` of ``Node`` descriptions (see ``base``); the graph tiers also keep
the fx graph ``interpret`` runs.  The tiers are objects (``tiers``), and ``tiers.run`` tries them in
order; the hooks tier (``hooks.run``) builds its graph while the model runs.
"""

from __future__ import annotations

import torch.fx as torch_fx
import torch.nn as nn

from .. import ops
from ..vocabulary import EXPORT, FX
from . import blocks
from . import export as export_tier
from . import fx as fx_tier
from .base import (
    ALIAS_META,
    META,
    OUTPUT,
    Graph,
    InputFacts,
    Node,
    gate_branches,
    structure_of,
)
from .classify import Classifier, arg_nodes

__all__ = ["ALIAS_META", "META", "OUTPUT", "Graph", "InputFacts", "Node", "exported_graph", "static_graph", "rebind"]


def static_graph(model: nn.Module, concrete_args: dict | None = None, facts: InputFacts | None = None) -> Graph:
    """The torch.fx graph of ``model`` (raises what torch.fx raises), analysed, without running it."""
    return from_fx_graph(model, fx_tier.trace(model, concrete_args), model, FX, frozenset(concrete_args or ()),
                         facts)


def exported_graph(model: nn.Module, args: tuple, kwargs: dict, facts: InputFacts | None = None) -> Graph:
    """The torch.export graph of ``model`` on these inputs (raises what torch.export raises), analysed."""
    gm = export_tier.trace(model, args, kwargs)
    return from_fx_graph(gm, gm.graph, model, EXPORT, facts=facts)


def from_fx_graph(root: nn.Module, fx_graph: torch_fx.Graph, model: nn.Module, tier: str,
                  fixed: frozenset[str] = frozenset(), facts: InputFacts | None = None) -> Graph:
    """Describe and analyse an fx graph whose targets resolve against ``root`` (the model itself for
    torch.fx, the exported program's module for torch.export)."""
    classifier = Classifier(root, fx_graph, model, fixed)
    nodes = classifier.run()
    out_node = next(n for n in fx_graph.nodes if n.op == "output")
    outputs = tuple(n.name for n in arg_nodes(out_node.args) if n.name in nodes)
    structure = structure_of(nodes, outputs, facts)
    graph = Graph(tier, nodes, outputs, structure, fx_graph=fx_graph, root=root, written=_written(fx_graph),
                  measured_params=_measured_params(root, fx_graph, classifier.canon, structure.reachable),
                  unmeasured_why=_opaque_readers(root, fx_graph, classifier.canon, structure.reachable))
    graph.gates = gate_branches(graph)
    blocks.split_paths(graph)
    return graph


def rebind(graph: Graph, model: nn.Module) -> Graph:
    """The same captured graph over another model of the same structure (a what-if copy): no new trace."""
    if graph.fx_graph is None:
        return graph
    if graph.root is not None and not isinstance(graph.root, torch_fx.GraphModule):
        root: nn.Module = model  # torch.fx's targets are the model's own attributes
    else:
        targets = {str(n.target) for n in graph.fx_graph.nodes if n.op in ("get_attr", "call_module")}
        root = torch_fx.GraphModule({t: _lookup(model, t, graph.root) for t in targets}, graph.fx_graph,
                                    type(model).__name__)
    return Graph(graph.tier, graph.nodes, graph.outputs, graph.structure, fx_graph=graph.fx_graph, root=root,
                 note=graph.note, written=graph.written, measured_params=graph.measured_params, gates=graph.gates,
                 unmeasured_why=graph.unmeasured_why, sees_structure=graph.sees_structure)


def _lookup(model: nn.Module, target: str, fallback: nn.Module):
    for root in (model, fallback):
        obj = root
        try:
            for part in target.split("."):
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    raise AttributeError(f"{target} is neither in the model nor in its graph")


def _written(fx_graph: torch_fx.Graph) -> frozenset[str]:
    """Nodes whose value (or a view of it) is later changed in place: the probe hands on a copy."""

    def written(node: torch_fx.Node, depth: int = 0) -> bool:
        for user in node.users:
            desc = user.meta.get(META)
            if desc is None:
                continue
            if desc.inplace and user.args and user.args[0] is node:
                return True
            if desc.kind == ops.VIEW and depth < 8 and written(user, depth + 1):
                return True
        return False

    return frozenset(n.name for n in fx_graph.nodes if n.op != "output" and written(n))


def _measured_params(root: nn.Module, fx_graph: torch_fx.Graph, canon: dict[str, str],
                     reachable: set[str]) -> frozenset[str]:
    """Parameters read by an op the capture knows: modules it called, and parameters whose values reach
    a known op on the data path (through constant-side ops such as ``w.t()``).  A parameter that only an
    opaque op (a custom autograd.Function, an extension op) reads, or none at all, was not measured.
    ``canon``: every name of a parameter of the model -> its first name (``canonical_names``)."""
    seen: set[str] = set()
    for n in fx_graph.nodes:
        desc = n.meta.get(META)
        if desc is None:
            continue
        if n.op == "call_module" and desc.kind != ops.OPAQUE:
            prefix = f"{n.target}." if n.target else ""
            for name, _ in root.get_submodule(str(n.target)).named_parameters(remove_duplicate=False):
                if prefix + name in canon:
                    seen.add(canon[prefix + name])
        elif n.op == "get_attr" and str(n.target) in canon and _reaches_known_op(n, reachable):
            seen.add(canon[str(n.target)])
    return frozenset(seen)


def _opaque_readers(root: nn.Module, fx_graph: torch_fx.Graph, canon: dict[str, str],
                    reachable: set[str]) -> dict[str, str]:
    """Parameters an opaque op reads (directly, or through ops on parameters alone such as ``w.t()``),
    and the parameters of opaque modules: why the probe could not measure them."""
    why: dict[str, str] = {}
    for n in fx_graph.nodes:
        desc = n.meta.get(META)
        if desc is None or desc.kind != ops.OPAQUE:
            continue
        params = []
        if n.op == "call_module":
            params = [f"{n.target}.{p}" for p, _ in root.get_submodule(str(n.target)).named_parameters()]
        todo, seen = list(n.all_input_nodes), set()
        while todo:
            a = todo.pop()
            if a in seen or a.name in reachable:
                continue
            seen.add(a)
            if a.op == "get_attr":
                params.append(str(a.target))
            else:
                todo.extend(a.all_input_nodes)
        for p in params:
            if p in canon:
                why.setdefault(canon[p], f"read only by {desc.op}, an op gradlint cannot see into (a custom "
                                         "autograd.Function, an extension op or an unknown module)")
    return why


def _reaches_known_op(start: torch_fx.Node, reachable: set[str]) -> bool:
    todo, visited = [start], set()
    while todo:
        for user in todo.pop().users:
            if user in visited or user.op == "output":
                continue
            visited.add(user)
            desc = user.meta.get(META)
            if desc is not None and desc.kind == ops.OPAQUE:
                continue
            if desc is not None and user.name in reachable:
                return True  # the parameter meets the data here
            todo.append(user)
    return False
