"""Splits in a graph module (residual blocks, concatenation skips): the users of the split's start reading
each operand's side get their own alias of the start, so one backward pass tells how much of the squared
gradient at the start came through each side."""

from __future__ import annotations

import torch
import torch.fx as fx

from .base import ALIAS_META, Graph


def alias(t):
    """A separate autograd node for one side of a split: its gradient is that side's share.

    A view, not a copy: a branch that writes its input in place must still change what the skip sees.
    """
    return t.view_as(t) if isinstance(t, torch.Tensor) else t


# False: measure every residual merge by vector-Jacobian products, as ``graph.apart`` (the tests compare the
# two estimators on blocks an alias can separate).
ALIASES = True


def split_paths(graph: Graph) -> None:
    """Insert an alias per side of every split of the structure into ``graph.fx_graph`` (marked
    ``ALIAS_META`` with (split end, operand)), outer splits first.

    A user of the start belongs to the side whose operand it reaches.  A residual merge where one user
    reaches two sides, or a side's node also feeds something past the end (a cell whose nodes read each
    other), is listed in ``graph.apart``: the probe measures each side by its own vector-Jacobian
    product from the end's gradient.  A concatenation so, or a split whose start
    is written in place (then the skip reads what the branch wrote, and no split can separate them), is
    left alone and gets no shares.  A start that an outer split already
    divided is divided again on the alias that holds the inner split's users (a U-Net level's input is
    both the start of its long skip and of its first residual block).
    """
    fx_graph = graph.fx_graph
    nodes = {n.name: n for n in fx_graph.nodes}
    position = {n: k for k, n in enumerate(fx_graph.nodes)}
    holders: dict[str, list[fx.Node]] = {}
    apart: list[tuple[str, str, tuple[str, ...]]] = []
    for sp in graph.structure.splits:
        start, end = nodes.get(sp.start), nodes.get(sp.end)
        if start is None or end is None or sp.start in graph.written or any(o not in nodes for o in sp.operands):
            continue
        reach = {o: _ancestors(nodes[o], start, position) | ({end} if o == sp.start else set())
                 for o in sp.operands}
        sides: dict[str, list[fx.Node]] = {o: [] for o in sp.operands}
        holder = None
        ambiguous = False
        for h in holders.get(sp.start, [start]):
            for user in list(h.users):
                hit = [o for o in sp.operands if user in reach[o]]
                if not hit:
                    continue
                if len(hit) > 1 or (holder is not None and holder is not h):
                    ambiguous = True
                holder = h
                sides[hit[0]].append(user)
        # a side whose nodes also feed something past the split (NAS-Bench-201's node 2 feeds node 3 and the
        # output): its alias would count the gradient coming back from there too
        leaky = _leaks(set().union(*reach.values()) - {start, end}, end)
        if (ambiguous or leaky or not ALIASES) and sp.kind == "merge":
            apart.append((sp.start, sp.end, sp.operands))
        if (ambiguous or holder is None or any(not users for users in sides.values())
                or ((leaky or not ALIASES) and sp.kind == "merge")):
            continue
        made = []
        for operand, users in sides.items():
            with fx_graph.inserting_after(holder):
                node = fx_graph.call_function(alias, (holder,))
            node.meta[ALIAS_META] = (sp.end, operand)
            position[node] = position[holder]
            for user in users:
                user.replace_input_with(holder, node)
            made.append(node)
        kept = [h for h in holders.get(sp.start, [start]) if h is not holder or h.users]
        holders[sp.start] = kept + made
    graph.apart = tuple(apart)


def _leaks(region: set[fx.Node], end: fx.Node) -> bool:
    """Whether a node of the region has a user outside it other than ``end`` (looking through aliases
    inserted for other splits)."""
    def outside(user: fx.Node) -> bool:
        if user is end or user in region:
            return False
        if user.meta.get(ALIAS_META) is not None:
            return any(outside(u) for u in user.users)
        return True

    return any(outside(u) for n in region for u in n.users)


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
