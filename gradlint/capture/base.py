"""The capture contract: a typed static graph of frozen node descriptions, the same for every tier.

A ``Node`` says what one graph operation is (kind, family, weight and bias parameters, the module
that performs it, where it was constructed), the way torch.fx's ShapeProp keeps its facts on
``node.meta``.  Measurements are added beside it by the probe, never inside it.  Rules and
renderers never learn which tier captured the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch.fx as fx
import torch.nn as nn

from .. import ops
from ..graph import GraphNode, Structure, analyse

META = "gradlint"            # node.meta key holding a Node
ALIAS_META = "gradlint.alias"   # node.meta key of an inserted block-input alias: (merge id, side)


@dataclass(frozen=True)
class Node:
    """What one graph node is, before anything runs."""

    id: str
    name: str                              # line-independent identity: module path, or "<module path>.<op>"
    op: str                                # module class or function name, as shown in reports
    kind: str                              # ops kinds: input, layer, nonlinearity, norm, merge, embedding, ...
    preds: tuple[str, ...] = ()            # the nodes whose values it reads, in order
    family: str | None = None              # nonlinearity family
    layers: int = 0                        # depth-bearing layers it stands for on a path (0, 1, or a stacked RNN's)
    row: str | None = None                 # the vocabulary row (ops.Op.name)
    weight: str | None = None              # qualified name of the parameter holding its weight
    weight_arg: tuple[int, str] | None = None   # where a function or ATen op takes its weight (position, keyword)
    bias: str | None = None
    module: str | None = None              # the module performing it ("" the root), if one does
    units_first: bool | None = None        # units on dim 1 (channels) or the last dim; None: as its input
    inplace: bool = False                  # writes its first argument
    saturation: tuple[float, float] | None = None
    slope: float | str | None = None       # ReLU family: negative slope, or the PReLU weight's name
    keeps_zero: bool = False
    path: str | None = None                # the user's line that constructed it
    line: int | None = None
    library: str | None = None             # where inside an installed package it was constructed
    bias_cancelled_by: str | None = None   # the batch-type norm right after its bias (name)
    shift: str | None = None               # an add of this parameter to the data (a position embedding)
    phi: Callable | None = field(default=None, compare=False, repr=False)   # nonlinearity's scalar function

    @property
    def measured(self) -> bool:
        return self.kind in ops.MEASURED



@dataclass
class Graph:
    """A captured model: nodes in forward order, its structure, and how to run it again."""

    tier: str                                   # fx | export | hooks
    nodes: dict[str, Node]
    outputs: tuple[str, ...]
    structure: Structure
    fx_graph: fx.Graph | None = None            # fx and export tiers: the graph the probe interprets...
    root: nn.Module | None = None               # ... over this module's parameters and submodules
    note: str | None = None                     # why earlier tiers could not capture the model
    written: frozenset[str] = frozenset()       # values written in place later: the probe hands on a copy
    measured_params: frozenset[str] = frozenset()   # parameters (qualified names) read by an op the capture knows
    unmeasured_why: dict[str, str] = field(default_factory=dict)   # a parameter not measured -> why not
    sees_structure: bool = True                 # residual structure seen (False: modules recorded as a chain)
    gates: frozenset[str] = frozenset()         # nodes on a branch that multiplies another path (see gate_branches)
    # residual merges whose sides share nodes past the start (a cell summing several branches that read each
    # other), so no alias can separate them: (start, end, operands), each side measured by its own
    # vector-Jacobian product from the end's gradient back to the start
    apart: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    _users: dict[str, list[str]] | None = field(default=None, repr=False)
    _gm: fx.GraphModule | None = field(default=None, repr=False)

    @property
    def gm(self) -> fx.GraphModule | None:
        """The graph as a runnable module (compiled on first use: the probe interprets the graph as is)."""
        if self._gm is None and self.fx_graph is not None:
            self._gm = self.root if isinstance(self.root, fx.GraphModule) and self.root.graph is self.fx_graph \
                else fx.GraphModule(self.root, self.fx_graph, type(self.root).__name__)
        return self._gm

    def users(self, node_id: str) -> list[str]:
        """Nodes reading ``node_id``'s value, in forward order."""
        if self._users is None:
            users = users_of(self.nodes)
            for o in self.outputs:
                if o in users:
                    users[o].append(OUTPUT)
            self._users = users
        return self._users.get(node_id, [])

    def live_preds(self, node_id: str) -> list[str]:
        """Preds reachable from the inputs (values that carry data, not parameters or constants)."""
        return [p for p in self.nodes[node_id].preds
                if p in self.structure.reachable and self.nodes[p].kind != ops.SHAPE]

    def module(self, model: nn.Module, node_id: str) -> nn.Module | None:
        return submodule(model, self.nodes[node_id].module)

    def past_no_ops(self, node_id: str, reshapes: bool = False) -> str:
        """The op behind a value: dropout (the identity during the probe), identity modules and views (and
        reshapes, if asked) are passed back through, so a branch ending in Dropout names the norm or layer
        before it."""
        through = (ops.DROPOUT, ops.VIEW, ops.RESHAPE) if reshapes else (ops.DROPOUT, ops.VIEW)
        for _ in range(16):
            live = self.live_preds(node_id)
            if self.nodes[node_id].kind not in through or len(live) != 1:
                return node_id
            node_id = live[0]
        return node_id


def users_of(nodes: dict[str, Node]) -> dict[str, list[str]]:
    """Each node -> the nodes reading its value, in forward order (a node reading it twice counts once)."""
    users: dict[str, list[str]] = {i: [] for i in nodes}
    for n in nodes.values():
        for p in dict.fromkeys(n.preds):
            if p in users:
                users[p].append(n.id)
    return users


def submodule(model: nn.Module, path: str | None) -> nn.Module | None:
    """``model``'s submodule at ``path``; None for no path, or one the model does not have."""
    if path is None:
        return None
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


OUTPUT = "<output>"   # the graph's output as a user in ``Graph.users``


@dataclass(frozen=True)
class InputFacts:
    """What the capture knows of the probe inputs before anything runs: which inputs have one value per
    sample (a timestep, a label: never the data path), and the data input the user named, if any
    (names as the forward's parameters, ``name_i`` inside nested structures)."""

    scalar: frozenset[str] = frozenset()
    data: str | None = None


def structure_of(nodes: dict[str, Node], outputs: tuple[str, ...], facts: InputFacts | None = None) -> Structure:
    """Depths, spine and residual merges.  Shape queries carry no values: no path runs through them."""
    facts = facts or InputFacts()

    def preds(n: Node) -> list[str]:
        return [p for p in n.preds if p in nodes and nodes[p].kind != ops.SHAPE]

    data = next((n.id for n in nodes.values() if n.kind == ops.INPUT and n.name == facts.data), None)
    return analyse([GraphNode(n.id, preds(n), n.layers, n.kind == ops.INPUT, n.kind == ops.MERGE,
                              n.row == "cat", n.kind == ops.INPUT and n.name in facts.scalar)
                    for n in nodes.values() if n.kind != ops.SHAPE], list(outputs), data)


def parameter_names(model: nn.Module) -> dict[int, str]:
    """id(parameter) -> its first qualified name (tied parameters keep one name)."""
    return {id(p): n for n, p in model.named_parameters()}


def canonical_names(model: nn.Module, first: dict[int, str] | None = None) -> dict[str, str]:
    """Every name a parameter is reachable by -> its first name (``lm_head.weight`` -> ``wte.weight``);
    ``first``: ``parameter_names(model)``, when the caller has it already."""
    first = parameter_names(model) if first is None else first
    return {n: first[id(p)] for n, p in model.named_parameters(remove_duplicate=False)}


def value_users(graph: Graph, node_id: str) -> list[str]:
    """Nodes that read ``node_id``'s value (not only its shape), and ``OUTPUT`` if the graph returns it."""
    return [u for u in graph.users(node_id) if u == OUTPUT or graph.nodes[u].kind != ops.SHAPE]


def gate_branches(graph: Graph) -> frozenset[str]:
    """Nodes on a multiplicative gate branch: a nonlinearity whose value, through views, scaling and
    adding constants, multiplies another data path (squeeze-excitation's sigmoid, a GLU's gate, the
    tanh inside GPT-2's GELU formula), with everything that feeds it and not the other path.  Such a
    branch modulates the path it multiplies; it is not a link of the depth path."""
    gates: set[str] = set()
    for n in graph.nodes.values():
        if n.kind != ops.NONLINEARITY or n.id not in graph.structure.reachable:
            continue
        chain, cur = [n.id], n.id
        for _ in range(6):
            users = [u for u in value_users(graph, cur) if u != OUTPUT]
            if len(users) != 1:
                break
            user = graph.nodes[users[0]]
            live = graph.live_preds(user.id)
            if user.row == "mul" and len(live) >= 2:
                others = [p for p in live if p != cur]
                branch = _ancestors(graph, n.id) - set().union(*(_ancestors(graph, p) for p in others))
                gates.update(branch | set(chain))
                break
            if user.kind in (ops.VIEW, ops.RESHAPE, ops.SCALE, ops.OTHER) and len(live) == 1:
                chain.append(user.id)  # a view, scaling by a number, adding a constant (1 + tanh(...))
                cur = user.id
                continue
            break
    return frozenset(gates)


def _ancestors(graph: Graph, node_id: str) -> set[str]:
    """``node_id`` and every node reachable from the inputs that its value depends on."""
    seen, todo = {node_id}, [node_id]
    while todo:
        for p in graph.live_preds(todo.pop()):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return seen
