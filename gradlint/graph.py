"""Structure of a captured graph: the data path, depths, the spine, residual merges and skips.

Pure Python over node ids; knows nothing of torch.  Nodes arrive in topological (forward) order.

The *data path* starts at one input: the one the network's depth is built on (an image, token ids, a
noisy sample).  Other inputs (timesteps, labels, masks, encoder memory) are *side inputs*: their nodes
are measured, but they start no path of the structure, so a term computed from a timestep alone and
added to the stream is a shift, not a residual branch.  Everything below (heights, spine, merges) is
read on the nodes reachable from the data input.

The *spine* is hierarchical.  At the top it is the dominator chain of the output from the data input:
the nodes every path passes.  Between two consecutive chain nodes ``u -> v`` where paths split at
``u`` and join at ``v`` (a residual add, a concatenation skip) the region is a *split*.  A split whose
deepest operand holds nested splits of its own (a U-Net, whose long concatenation skips wrap the whole
inner network) is descended: the chain from ``u`` to that operand joins the spine.  A residual block's
branch (a few layers, no nesting) is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SINK = "<output>"


@dataclass
class GraphNode:
    id: str
    preds: list[str]
    layers: int = 0                  # depth-bearing layers the node stands for (a stacked RNN: its layers)
    is_input: bool = False
    is_merge: bool = False           # an add: a residual merge when its operands pass different numbers of layers
    is_concat: bool = False          # a concatenation: a skip by concatenation (U-Net, DenseNet) on the same terms
    scalar: bool = False             # an input with one value per sample (a timestep, a label): never the data path


@dataclass(frozen=True)
class Merge:
    id: str
    block_input: str
    skip: str
    branches: tuple[str, ...]
    branch_depth: int                # depth-bearing layers from the block input through the deepest branch
    skip_depth: int = 0              # ... through the skip (0 for an identity, 1 for a projection)


@dataclass(frozen=True)
class Step:
    """One step of a chain, from the previous chain node to ``node``."""

    node: str
    length: int                      # depth-bearing layers on the longest path of the step (the node's own included)
    split: "Split | None" = None     # paths that parted at the previous node join at ``node``


@dataclass(frozen=True)
class Split:
    """A residual add or a concatenation whose operands part at ``start`` and pass different numbers of
    layers.  ``paths`` are the chains from ``start`` to each operand; ``own`` the end node's own layers."""

    start: str
    end: str
    operands: tuple[str, ...]
    through: tuple[int, ...]         # depth-bearing layers from ``start`` to each operand (longest path)
    paths: tuple[tuple[Step, ...], ...]
    own: int
    kind: str                        # merge | concat


@dataclass
class Structure:
    depth: dict[str, int]            # depth-bearing layers on the longest path to the output, not counting the node
    height: dict[str, int]           # ... on the longest path from the data input, counting the node
    spine: list[str]                 # the hierarchical spine, in forward order
    reachable: set[str]              # nodes whose value depends on some input
    compositional_depth: int
    merges: list[Merge] = field(default_factory=list)
    data_input: str | None = None    # the input the data path starts from (None: every input, as one source)
    data: set[str] = field(default_factory=set)        # nodes reachable from the data input
    side: dict[str, str] = field(default_factory=dict)  # nodes off the data path -> the side input they come from
    streams: dict[str, str] = field(default_factory=dict)   # input -> data | encoder | conditioning | unused
    chain: tuple[Step, ...] = ()     # the top-level chain, data input to output
    splits: list[Split] = field(default_factory=list)   # every split of the walked chains, outer first
    nested: set[str] = field(default_factory=set)       # spine nodes inside a split (a U-Net's inner path)


def analyse(nodes: list[GraphNode], outputs: list[str], data: str | None = None) -> Structure:
    """The structure of a graph.  ``data``: the data input's id (None: chosen from the graph)."""
    by_id = {n.id: n for n in nodes}
    order = [n.id for n in nodes]
    rank = {i: k for k, i in enumerate(order)}
    rank[SINK] = len(order)

    # Only nodes reachable from an input start or carry a path (parameters and constants do not).
    reachable: set[str] = set()
    for n in nodes:
        if n.is_input or any(p in reachable for p in n.preds):
            reachable.add(n.id)
    preds = {i: [p for p in dict.fromkeys(by_id[i].preds) if p in reachable] for i in order if i in reachable}
    preds[SINK] = [o for o in dict.fromkeys(outputs) if o in reachable]
    users: dict[str, list[str]] = {i: [] for i in preds}
    for i, ps in preds.items():
        for p in ps:
            users[p].append(i)
    layers = {i: by_id[i].layers for i in preds if i != SINK}
    layers[SINK] = 0

    depth: dict[str, int] = {SINK: 0}
    for i in reversed(order):
        if i in preds:
            ds = [depth[u] + layers[u] for u in users[i] if u in depth]
            if ds:
                depth[i] = max(ds)
    inputs = [i for i in order if i in preds and by_id[i].is_input]
    graph = _Walk(preds, users, layers, rank)

    if data not in inputs or data not in depth:
        data = _choose(graph, inputs, by_id, depth)
    if data is None:  # no input reaches the output: no path, no spine
        return Structure(depth, {}, [], reachable, 0, streams={i: "unused" for i in inputs})
    structure = Structure(depth, {}, [], reachable, depth.get(data, 0), data_input=data)
    spine = _stream(structure, graph, data, SINK, order, by_id)
    structure.height = graph.heights(data, order)
    structure.data = set(graph.live) - {SINK}

    for i in inputs:
        spine |= _side_input(structure, i, data, graph, order, by_id)
    structure.spine = sorted(spine, key=rank.__getitem__)
    return structure


def _side_input(structure: Structure, i: str, data: str, graph: "_Walk", order: list[str],
                by_id: dict[str, GraphNode]) -> set[str]:
    """Record an input's role (data, unused, conditioning, or an encoder whose own residual stream leads into
    the data path) and the nodes it alone reaches; returns an encoder's spine."""
    if i == data:
        structure.streams[i] = "data"
        return set()
    rank, depth = graph.rank, structure.depth
    reach = _forward(i, graph.users) - structure.data - {SINK}
    for n in sorted(reach, key=rank.__getitem__):
        structure.side.setdefault(n, i)
    if i not in depth:
        structure.streams[i] = "unused"
        return set()
    end = None if by_id[i].scalar else _encoder_end(i, graph, structure.data, by_id)
    if end is None:
        structure.streams[i] = "conditioning"
        return set()
    structure.streams[i] = "encoder"
    structure.compositional_depth = max(structure.compositional_depth, depth[i])
    encoder = _Walk(graph.preds, graph.users, graph.layers, rank)
    encoder.restrict(reach | {i})
    return _stream(structure, encoder, i, end, order, by_id)


def _stream(structure: Structure, graph: "_Walk", start: str, end: str, order: list[str],
            by_id: dict[str, GraphNode]) -> set[str]:
    """Walk one stream (the data path, or an encoder's) from ``start`` to ``end``: its splits and residual
    merges go into ``structure``; returns its spine."""
    if start == structure.data_input:
        graph.restrict(graph.forward(start))
    height = graph.heights(start, order)
    tree = _Tree(graph, height, by_id)
    steps = tree.steps(graph.chain(start, end))
    if end == SINK:
        structure.chain = steps
    spine = tree.spine_of(steps, start, structure.nested)
    structure.splits += tree.splits
    structure.merges += _merges(graph, height, by_id, order, start, spine)
    return spine


class _Walk:
    """Reachability and dominator chains over the nodes of one source's graph."""

    def __init__(self, preds, users, layers, rank):
        self.preds, self.users, self.layers, self.rank = preds, users, layers, rank
        self.live: set[str] = set(preds)
        self._chains: dict[tuple[str, str], list[str]] = {}

    def restrict(self, live: set[str]) -> None:
        self.live = live
        self._chains.clear()

    def forward(self, start: str) -> set[str]:
        return _forward(start, self.users)

    def live_preds(self, i: str) -> list[str]:
        return [p for p in self.preds[i] if p in self.live]

    def heights(self, start: str, order: list[str]) -> dict[str, int]:
        height = {start: self.layers[start]}
        for i in [*order, SINK]:
            if i in self.live and i != start:
                ps = [height[p] for p in self.live_preds(i) if p in height]
                if ps:
                    height[i] = max(ps) + self.layers[i]
        return height

    def chain(self, start: str, end: str) -> list[str]:
        """The dominator chain of ``end`` from ``start``: every node all paths from one to the other pass."""
        key = (start, end)
        if key not in self._chains:
            if start == end:
                self._chains[key] = [start]
            else:
                back = {end}
                todo = [end]
                while todo:
                    for p in self.live_preds(todo.pop()):
                        if p not in back and self.rank[p] >= self.rank[start]:
                            back.add(p)
                            todo.append(p)
                region = sorted(back & _forward(start, self.users, self.live), key=self.rank.__getitem__)
                idom = self.dominators(start, region)
                found = [end]
                while found[-1] != start and found[-1] in idom:
                    found.append(idom[found[-1]])
                self._chains[key] = found[::-1] if found[-1] == start else [start, end]
        return self._chains[key]


    def dominators(self, start: str, region: list[str]) -> dict[str, str]:
        """Immediate dominators from ``start`` over ``region`` (topological order; Cooper, Harvey & Kennedy)."""
        idom = {start: start}
        for v in region:
            if v == start:
                continue
            ps = [p for p in self.live_preds(v) if p in idom]
            if not ps:
                continue
            new = ps[0]
            for p in ps[1:]:
                new = _intersect(new, p, idom, self.rank)
            idom[v] = new
        return idom


class _Tree:
    """Walks chains into steps, finding the splits (outer first) and which of them to descend for the spine."""

    def __init__(self, graph: _Walk, height: dict[str, int], by_id: dict[str, GraphNode]):
        self.graph, self.height, self.by_id = graph, height, by_id
        self.splits: list[Split] = []
        self._memo: dict[tuple[str, str], tuple[Step, ...]] = {}

    def steps(self, chain: list[str]) -> tuple[Step, ...]:
        out = []
        for u, v in zip(chain, chain[1:]):
            own = self.graph.layers[v]
            length = self.height.get(v, 0) - self.height.get(u, 0)
            ps = self.graph.live_preds(v)
            split = None
            if len(ps) >= 2 and v != SINK and (self.by_id[v].is_merge or self.by_id[v].is_concat):
                through = tuple(self.height[p] - self.height[u] for p in ps)
                if len(set(through)) >= 2:
                    slot = len(self.splits)
                    self.splits.append(None)  # outer splits first: the slot is taken before the paths are walked
                    paths = tuple(self.path(u, p) for p in ps)
                    split = Split(u, v, tuple(ps), through, paths, own, "merge" if self.by_id[v].is_merge else "concat")
                    self.splits[slot] = split
            out.append(Step(v, length, split))
        return tuple(out)

    def path(self, start: str, end: str) -> tuple[Step, ...]:
        key = (start, end)
        if key not in self._memo:
            self._memo[key] = ()  # a cycle cannot happen in a DAG; this only guards re-entry
            self._memo[key] = self.steps(self.graph.chain(start, end))
        return self._memo[key]

    def spine_of(self, steps: tuple[Step, ...], start: str | None = None, nested: set[str] | None = None) -> set[str]:
        """The chain's nodes, and for each split whose deepest operand nests splits of its own, that
        operand's chain (recursively); the nodes of descended chains also go into ``nested``."""
        nodes = {s.node for s in steps if s.node != SINK}
        if start is not None:
            nodes.add(start)
        for s in steps:
            if s.split is None:
                continue
            deepest = max(range(len(s.split.operands)), key=lambda k: (s.split.through[k], -k))
            path = s.split.paths[deepest]
            if any(t.split is not None for t in path):
                inner = self.spine_of(path, s.split.start, nested) - {s.split.start}
                nodes |= inner
                if nested is not None:
                    nested |= inner
        return nodes


def effective_depth_steps(steps: tuple[Step, ...], share: dict[tuple[str, str], float],
                          required: set[str]) -> dict[int, float] | None:
    """The distribution of depth-bearing layers on a gradient path along ``steps``, each path weighted by
    its share of the squared gradient.  ``share[(split end, operand)]`` is the measured share of an
    operand's side; a split without shares counts its longest path, except a split in ``required`` (a
    residual block), without which the figure is not known (None)."""
    dist = {0: 1.0}
    for s in steps:
        sp = s.split
        parts = None
        if sp is not None and all((sp.end, o) in share for o in sp.operands):
            parts = {}
            for o, path in zip(sp.operands, sp.paths):
                if share[(sp.end, o)] == 0:
                    continue  # no gradient comes through this side (a dead branch): its paths weigh nothing
                sub = effective_depth_steps(path, share, required)
                if sub is None:
                    return None
                w = share[(sp.end, o)]
                for k, q in sub.items():
                    parts[k + sp.own] = parts.get(k + sp.own, 0.0) + q * w
        elif sp is not None and sp.end in required:
            return None
        if parts is None:
            parts = {s.length: 1.0}
        nxt: dict[int, float] = {}
        for a, qa in dist.items():
            for b, qb in parts.items():
                nxt[a + b] = nxt.get(a + b, 0.0) + qa * qb
        dist = nxt
    return dist


def effective_depth_mean(steps: tuple[Step, ...], share: dict, required: set[str]):
    """The mean of ``effective_depth_steps``'s distribution, by linearity (a path's length is the sum of
    its steps' lengths), without building the distribution: the error bars evaluate it for hundreds of
    redrawn shares at once (tensors of shares give a tensor).  None where the distribution is None."""
    total = 0.0
    for s in steps:
        sp = s.split
        if sp is not None and all((sp.end, o) in share for o in sp.operands):
            for o, path in zip(sp.operands, sp.paths):
                w = share[(sp.end, o)]
                if not _any_nonzero(w):
                    continue
                sub = effective_depth_mean(path, share, required)
                if sub is None:
                    return None
                total = total + w * (sub + sp.own)
        elif sp is not None and sp.end in required:
            return None
        else:
            total = total + s.length
    return total


def _any_nonzero(w) -> bool:
    return bool((w != 0).any()) if hasattr(w, "any") else w != 0


def _forward(start: str, users: dict[str, list[str]], within: set[str] | None = None) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for u in users.get(todo.pop(), ()):
            if u not in seen and (within is None or u in within or u == SINK):
                seen.add(u)
                todo.append(u)
    return seen


def _choose(graph: _Walk, inputs: list[str], by_id: dict[str, GraphNode], depth: dict[str, int]) -> str | None:
    """The data input.  Of the inputs that reach the output, those with more than one value per sample
    (not a timestep, a label, a boolean or batch-wide mask) are candidates, and the one whose own values
    meet the other candidates' farthest from the output wins: conditioning is injected all along the network (a timestep into every residual
    block, encoder memory into every cross-attention, a mask into every attention, so some of its entries
    sit next to the output), while the data enters once, where the network starts.  Ties go to the input
    reaching the most layers, then to the first."""
    live = [i for i in inputs if i in depth]
    if not live:
        return None
    candidates = [i for i in live if not by_id[i].scalar] or live
    if len(candidates) == 1:
        return candidates[0]
    reach = {i: _forward(i, graph.users) - {SINK} for i in candidates}

    def score(i: str) -> tuple:
        others = set().union(*(reach[j] for j in candidates if j != i))
        own = reach[i] - others
        entries = [v for v in reach[i] & others if v in depth and any(p in own for p in graph.preds[v])]
        meets = min((depth[v] for v in entries), default=max(depth.values()))
        return (meets, sum(graph.layers[v] for v in reach[i]))

    scores = {i: score(i) for i in candidates}
    best = max(scores.values())
    return next(i for i in candidates if scores[i] == best)


def _encoder_end(i: str, graph: "_Walk", data: set[str], by_id: dict[str, GraphNode]) -> str | None:
    """Where a side input's own stream ends before it meets the data path (an encoder's output), when
    that stream is a residual stream: a residual merge on its dominator chain (a time embedding's MLP or a
    recurrent encoder is conditioning, whose layers are measured as such)."""
    graph.restrict(_forward(i, graph.users))
    chain = graph.chain(i, SINK)
    own = []
    for v in chain:
        if v in data or v == SINK:
            break
        own.append(v)
    merges = sum(1 for v in own[1:] if by_id[v].is_merge and len(graph.live_preds(v)) >= 2)
    graph.restrict(data | {SINK})
    return own[-1] if len(own) >= 2 and merges else None


def _merges(graph: "_Walk", height: dict[str, int], by_id: dict[str, GraphNode], order: list[str], start: str,
            spine: set[str]) -> list[Merge]:
    """Residual merges anywhere on a stream: adds whose operands both carry it and reach the add's
    immediate dominator (its block input) through different numbers of layers."""
    stream = [i for i in order if i in graph.live]
    idom = graph.dominators(start, stream)
    merges = []
    for i in stream:
        node = by_id[i]
        ps = graph.live_preds(i)
        if not node.is_merge or len(ps) < 2 or i not in idom or i == start:
            continue
        bi = idom[i]
        through = {p: height[p] - height[bi] for p in ps}
        if len(set(through.values())) < 2:
            continue  # equal depth on every operand: a sum of parallel paths, not a skip plus a branch
        skip = min(through, key=lambda p: (through[p], p not in spine))
        branches = tuple(p for p in through if p != skip)
        merges.append(Merge(i, bi, skip, branches, max(through[b] for b in branches), through[skip]))
    return merges


def _intersect(a: str, b: str, idom: dict[str, str], rank: dict[str, int]) -> str:
    while a != b:
        while rank[a] > rank[b]:
            a = idom[a]
        while rank[b] > rank[a]:
            b = idom[b]
    return a
