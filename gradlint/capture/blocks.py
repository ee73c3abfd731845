"""Residual blocks in a graph module: the skip and the branch each get their own alias of the block input,
so one backward pass tells how much of the block's squared gradient came through the branch."""

from __future__ import annotations

import torch
import torch.fx as fx

from .base import ALIAS_META, Graph


def alias(t):
    """A separate autograd node for one side of a residual block: its gradient is that side's share.

    A view, not a copy: a branch that writes its input in place must still change what the skip sees.
    """
    return t.view_as(t) if isinstance(t, torch.Tensor) else t


def split_block_inputs(graph: Graph) -> None:
    """Insert an alias per side of every residual block into ``graph.fx_graph`` (marked ``ALIAS_META``).

    A user of the block input belongs to the side whose operand it reaches.  A block where one user
    reaches both sides, or whose block input is written in place (then the skip reads what the branch
    wrote, and no split can separate them), is left alone and gets no branch share.
    """
    fx_graph = graph.fx_graph
    nodes = {n.name: n for n in fx_graph.nodes}
    position = {n: k for k, n in enumerate(fx_graph.nodes)}
    for m in graph.structure.merges:
        bi, merge = nodes.get(m.block_input), nodes.get(m.id)
        if bi is None or merge is None or m.block_input in graph.written:
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
            with fx_graph.inserting_after(bi):
                node = fx_graph.call_function(alias, (bi,))
            node.meta[ALIAS_META] = (m.id, side)
            for user in users:
                user.replace_input_with(bi, node)


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
