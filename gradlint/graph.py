"""Structure of a captured graph: depths, the spine (dominators of the output), residual merges.

Pure Python over node ids; knows nothing of torch.  Nodes arrive in topological (forward) order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCE = "<inputs>"
SINK = "<output>"


@dataclass
class GraphNode:
    id: str
    preds: list[str]
    layers: int = 0                  # depth-bearing layers the node stands for (a stacked RNN: its layers)
    is_input: bool = False
    is_merge: bool = False


@dataclass
class Structure:
    depth: dict[str, int]            # depth-bearing layers on the longest path to the output, not counting the node
    height: dict[str, int]           # depth-bearing layers on the longest path from an input, counting the node
    idom: dict[str, str]             # immediate dominator (from the inputs' virtual source)
    spine: list[str]                 # dominators of the output, input side first
    reachable: set[str]
    compositional_depth: int
    merges: list["Merge"] = field(default_factory=list)


@dataclass(frozen=True)
class Merge:
    id: str
    block_input: str
    skip: str
    branches: tuple[str, ...]
    branch_depth: int                # depth-bearing layers from the block input through the deepest branch
    skip_depth: int = 0              # ... through the skip (0 for an identity, 1 for a projection)


def analyse(nodes: list[GraphNode], outputs: list[str]) -> Structure:
    by_id = {n.id: n for n in nodes}
    order = [n.id for n in nodes]

    # Only nodes reachable from the inputs start or carry a path (parameters and constants do not).
    reachable: set[str] = set()
    for n in nodes:
        if n.is_input or any(p in reachable for p in n.preds):
            reachable.add(n.id)
    preds = {i: [p for p in by_id[i].preds if p in reachable] for i in order if i in reachable}
    preds[SINK] = [o for o in outputs if o in reachable]
    users: dict[str, list[str]] = {i: [] for i in preds}
    for i, ps in preds.items():
        for p in ps:
            users[p].append(i)

    counts = {i: by_id[i].layers for i in preds if i != SINK}
    counts[SINK] = 0
    depth: dict[str, int] = {SINK: 0}
    for i in reversed(order):
        if i not in preds:
            continue
        ds = [depth[u] + counts[u] for u in users[i] if u in depth]
        if ds:
            depth[i] = max(ds)
    height: dict[str, int] = {}
    for i in order:
        if i in preds:
            height[i] = max((height[p] for p in preds[i]), default=0) + counts[i]

    idom = _dominators(order, preds, by_id)
    spine: list[str] = []
    cur = idom.get(SINK)
    while cur is not None and cur != SOURCE:
        spine.append(cur)
        cur = idom.get(cur)
    spine.reverse()
    cd = max((depth[i] for i in preds if i != SINK and by_id[i].is_input and i in depth), default=0)
    structure = Structure(depth, height, idom, spine, reachable, cd)
    spine_set = set(spine)
    for i in spine:
        node = by_id[i]
        if not node.is_merge or len(preds[i]) < 2:
            continue
        bi = idom[i]
        base = height.get(bi, 0) if bi != SOURCE else 0
        through = {p: height[p] - base for p in dict.fromkeys(preds[i])}
        if len(set(through.values())) < 2:
            continue  # equal depth on every operand: a sum of parallel paths, not a skip plus a branch
        skip = min(through, key=lambda p: (through[p], p not in spine_set))
        branches = tuple(p for p in through if p != skip)
        structure.merges.append(Merge(i, bi, skip, branches, max(through[b] for b in branches), through[skip]))
    return structure


def _dominators(order: list[str], preds: dict[str, list[str]], by_id: dict[str, GraphNode]) -> dict[str, str]:
    """Immediate dominators on a DAG in topological order (Cooper, Harvey & Kennedy), from a virtual source."""
    rank = {SOURCE: 0}
    idom: dict[str, str] = {SOURCE: SOURCE}
    seq = [i for i in order if i in preds] + [SINK]
    for k, i in enumerate(seq, start=1):
        rank[i] = k
        ps = [SOURCE] if (i != SINK and by_id[i].is_input) else [p for p in preds[i] if p in idom]
        if not ps:
            continue
        new = ps[0]
        for p in ps[1:]:
            new = _intersect(new, p, idom, rank)
        idom[i] = new
    del idom[SOURCE]
    return idom


def _intersect(a: str, b: str, idom: dict[str, str], rank: dict[str, int]) -> str:
    while a != b:
        while rank[a] > rank[b]:
            a = idom[a]
        while rank[b] > rank[a]:
            b = idom[b]
    return a
