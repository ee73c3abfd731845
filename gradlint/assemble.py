"""The report, assembled from what the probe measured and the captured graph's structure.

No model and no autograd here.  ``probe.run`` measures (``Measured``: one ``Measure`` of plain numbers
per node, the branch shares, what Y is, and the per-sample sums behind the error bars) and hands over;
this module decides nothing the rules decide, it only lays the numbers out as a ``ModelReport``.  Its
only tensor arithmetic is the error bars' redraws of those per-sample sums (``errorbars``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from . import errorbars, stats
from . import graph as graph_structure
from .capture import Graph, Node
from .report import Layer, ModelReport, OutputStats, ProbeSettings, ResidualBlock, Shift, Summary
from .vocabulary import CONCAT, EMBEDDING, INPUT, LAYER, NONLINEARITY, WHAT_IF

UNMEASURED_LISTED = 8   # modules named in the report's list of what the probe did not see


@dataclass(frozen=True)
class Subject:
    """What is analysed and where it came from: the target as reported, the file and line that define it,
    and where its probe inputs came from ("given", "example_inputs", "input-shape" or "inferred")."""

    target: str
    path: str | None = None
    line: int | None = None
    input_source: str = "given"

    def variant(self, change: str) -> Subject:
        """The copy of this model that ``--what-if change`` probes."""
        return replace(self, target=f"{self.target}{WHAT_IF}{change}")


@dataclass
class Measure:
    """What the probe measured at one node: plain numbers once the backward is done."""

    norm: float | None = None
    numel: int = 0
    positions: int | None = None          # positions per sample and unit (pixels, tokens; 1 for a vector)
    nonfinite: bool = False
    units_first: bool | None = None
    width: int | None = None
    collapse: stats.Collapse | None = None
    defect: float | None = None
    copy_of: str | None = None
    grad_sq: list = field(default_factory=list)   # squared gradient norm per draw (emptied once summed)
    grad_ps: list = field(default_factory=list)   # ... per sample of the batch (tensors; None: dim 0 is not the batch)
    value_ps: object = None                       # squared norm of the value per sample (a tensor, or None)
    draw_sums: list = field(default_factory=list)  # squared gradient norm per draw (kept for the error bars)
    y_norm: float = 0.0                            # ||Y|| the GSC was taken relative to
    gsc: float | None = None
    operands: tuple[float | None, ...] = ()   # a merge or a shift: the norm of each operand, in the order of its preds
    operand_sizes: tuple[int, ...] = ()       # ... and its elements (a broadcast operand has fewer)
    reach: object = None                      # a recurrent layer's gradient through time (recurrence.Reach)


@dataclass
class Measured:
    """Everything the probe measured, as plain numbers."""

    measures: dict[str, Measure]
    shares: dict[tuple[str, str], float]     # (split end, operand) -> that side's share of the squared gradient
    probe: ProbeSettings
    trainable: dict[str, int]                # trainable parameters (first names, tied ones once) -> elements
    output: OutputStats
    anchor: str | None = None                # the node the GSC is relative to when the output is zero
    no_gradient: bool = False
    changes: tuple[str, ...] = ()            # the gradlint.init changes that would change this model
    per_sample: PerSample | None = None      # what the error bars resample


@dataclass
class PerSample:
    """The values behind the error bars (``errorbars``): the batch (None: dim 0 is not the batch), the
    cotangent draws, Y's squared norm per sample, and each split side's squared gradient per draw and
    per sample."""

    batch: int | None
    draws: int
    y_ps: object
    alias_sq: dict
    alias_ps: dict


def report(graph: Graph, measured: Measured, subject: Subject) -> ModelReport:
    st = graph.structure
    spine = set(st.spine) if graph.sees_structure else {
        # a chain of modules hides residual streams: only the inputs and the output are sure to be on the spine
        i for i in st.spine if graph.nodes[i].kind == INPUT or i in graph.outputs}
    points = spine_point_ids(graph, measured, spine)
    head = head_ids(points, measured)
    redrawn = _redraw(measured)
    layers = _layers(graph, measured, subject, spine, points, head, redrawn)
    blocks = _blocks(graph, measured, subject)
    coverage, unmeasured = _coverage(graph, measured.trainable)
    ms = measured.measures
    return ModelReport(
        target=subject.target, path=subject.path, line=subject.line, trace=graph.tier, trace_note=graph.note,
        probe=measured.probe, summary=_summary(graph, measured, layers, points, head, coverage, redrawn),
        layers=tuple(layers), residual_blocks=tuple(blocks),
        nonfinite=tuple(graph.nodes[i].name for i in graph.nodes if i in ms and ms[i].nonfinite),
        output_zero=measured.anchor is not None, no_gradient=measured.no_gradient, unmeasured=unmeasured,
        output=measured.output, shifts=tuple(_shifts(graph, measured, subject, spine)),
        applicable_changes=measured.changes,
    )


def spine_point_ids(graph: Graph, measured: Measured, spine: set[str]) -> list[str]:
    """Where the GSC profile is read: float inputs, embedding outputs, depth-bearing spine layers and
    residual merges with a measured GSC, input side first."""
    merges = {m.id for m in graph.structure.merges}
    ms = measured.measures
    return [i for i in graph.structure.spine
            if i in spine and i in ms and ms[i].gsc is not None and graph.structure.depth.get(i) is not None
            and (graph.nodes[i].kind in (INPUT, LAYER, EMBEDDING) or i in merges)]


def head_ids(points: list[str], measured: Measured) -> set[str]:
    """The spine points after the network pooled its positions away (a classifier after global average
    pooling or a class token): the GSC drops across the pooling, so they are left out of the fit."""
    positions = [measured.measures[i].positions or 1 for i in points]
    if max(positions, default=1) <= 1:
        return set()
    first = next((k for k, p in enumerate(positions) if p == 1 and max(positions[:k], default=1) > 1), None)
    return set(points[first:]) if first is not None else set()


def _where(node: Node, subject: Subject) -> dict:
    return {"path": node.path or subject.path, "line": node.line if node.path else subject.line}


def _layers(graph: Graph, measured: Measured, subject: Subject, spine: set[str], points: list[str],
            head: set[str], redrawn: Redrawn) -> list[Layer]:
    """Every measured node, in forward order (and the concatenation skips on the spine: a run of layers a
    skip joins is no plain stack)."""
    st = graph.structure
    bypassed = _bypassed(graph)
    concats = {sp.end for sp in st.splits if sp.kind == "concat"} & spine
    layers: list[Layer] = []
    for i, n in graph.nodes.items():
        m = measured.measures.get(i)
        if not (n.measured or i in concats) or m is None or m.norm is None:
            continue
        c = m.collapse
        layers.append(Layer(
            name=n.name, op=n.op, kind=CONCAT if i in concats else n.kind, depth=st.depth.get(i), spine=i in spine,
            gsc=m.gsc, preact_std=c.preact_std if c else None, relative_spread=c.relative_spread if c else None,
            sign_diversity=c.sign_diversity if c else None, nonlinearity=c.nonlinearity if c else None,
            dead_fraction=c.dead_fraction if c else None, saturated_fraction=c.saturated_fraction if c else None,
            orthogonality_defect=m.defect, width=m.width, samples=c.samples if c else None,
            rectified=c.rectified if c else None, zero_input=c.zero if c else None,
            zero_from_init=_zero_from_init(graph, measured, i) if c and c.zero else None,
            rms=m.norm / math.sqrt(m.numel) if m.numel else None, family=n.family,
            **_where(n, subject),
            weight=n.weight, copy_of=m.copy_of, bias_cancelled_by=n.bias_cancelled_by, library=n.library,
            layers=n.layers if n.kind == LAYER else None, positions=m.positions,
            spine_point=i in points, head=i in head, gate=i in graph.gates,
            side=graph.nodes[st.side[i]].name if i in st.side else None, nested=i in st.nested and i in spine,
            bypassed=i in bypassed, **redrawn.layer_errors(i),
            time_steps=m.reach.steps if m.reach else None, time_reach=m.reach.reach if m.reach else None,
            time_rate=m.reach.rate if m.reach else None,
        ))
    return layers


def _zero_from_init(graph: Graph, measured: Measured, node: str) -> bool:
    """Whether a node's all-zero input comes only from zero-initialised layers: layers whose output is
    exactly zero from a non-zero input, so their (effective) weight and bias are zero, as a zeroed last
    convolution of a residual branch, and trainable parameters that are all zero, as the gain of a
    scaled-weight convolution that starts at zero.  Training moves those at its first step, so the
    branch is not dead.  Walks back through the zero
    values to where the zeros start; a zero made by an op that is no layer (a 'none' edge multiplying by
    zero, a ReLU whose every input is negative) is a structural zero."""
    ms, seen = measured.measures, set()
    todo = [p for p in graph.nodes[node].preds if ms.get(p) is not None and ms[p].norm == 0]
    if not todo:
        return False
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        zeros = [p for p in graph.nodes[i].preds if ms.get(p) is not None and ms[p].norm == 0]
        if not zeros and graph.nodes[i].kind != LAYER and graph.nodes[i].name not in measured.trainable:
            return False
        todo += zeros
    return True


def _blocks(graph: Graph, measured: Measured, subject: Subject) -> list[ResidualBlock]:
    blocks = []
    for mg in graph.structure.merges:
        node = graph.nodes[mg.id]
        skip_norm = _operand_norm(measured, node, mg.skip)
        branch_norms = [_operand_norm(measured, node, b) for b in mg.branches]
        branch_norm = math.sqrt(sum(b ** 2 for b in branch_norms if b is not None))
        dilution = (skip_norm / branch_norm if skip_norm is not None and None not in branch_norms and branch_norm > 0
                    else None)
        share = [measured.shares.get((mg.id, b)) for b in mg.branches] if (mg.id, mg.skip) in measured.shares else [None]
        blocks.append(ResidualBlock(
            merge=node.name, block_input=graph.nodes[mg.block_input].name if mg.block_input in graph.nodes else "input",
            skip=graph.nodes[mg.skip].name, branch=", ".join(graph.nodes[b].name for b in mg.branches),
            dilution=dilution, branch_share=sum(share) if None not in share else None, branch_depth=mg.branch_depth,
            skip_depth=mg.skip_depth, branch_op=", ".join(graph.nodes[graph.past_no_ops(b)].op for b in mg.branches),
            zero_branch=None not in branch_norms and branch_norm == 0, **_where(node, subject),
        ))
    return blocks


def _shifts(graph: Graph, measured: Measured, subject: Subject, spine: set[str]) -> list[Shift]:
    """Parameters added to the data (a position embedding) or concatenated with it (a class token), with the
    root mean square of their elements over the data operand's: a concatenated token compares with the
    data's tokens, a broadcast embedding with what it is added to."""
    st = graph.structure
    shifts = []
    for i, n in graph.nodes.items():
        m = measured.measures.get(i)
        if n.shift is None or m is None or len(m.operands) != len(n.preds) or i not in st.data:
            continue
        live = [k for k, p in enumerate(n.preds) if p in st.data]
        const = [k for k, p in enumerate(n.preds) if p not in st.data and m.operands[k] is not None]
        if len(live) != 1 or not const or not m.operands[live[0]]:
            continue
        term = math.sqrt(sum(m.operands[k] ** 2 for k in const) / max(1, sum(m.operand_sizes[k] for k in const)))
        data = m.operands[live[0]] / math.sqrt(max(1, m.operand_sizes[live[0]]))
        shifts.append(Shift(n.name, n.shift, term / data, st.depth.get(i), i in spine, **_where(n, subject)))
    return shifts


def _summary(graph: Graph, measured: Measured, layers: list[Layer], points: list[str], head: set[str],
             coverage: float | None, redrawn: Redrawn) -> Summary:
    st, ms = graph.structure, measured.measures
    body = [i for i in points if i not in head]
    required = {sp.end for sp in st.splits if sp.kind == "merge"} & {m.id for m in st.merges}
    dist = graph_structure.effective_depth_steps(st.chain, measured.shares, required) if st.chain else None
    if dist is None and not st.chain and st.compositional_depth == 0:
        dist = {0: 1.0}
    paths = stats.path_length(dist) if dist else None
    fit = stats.explosion_fit([st.depth[i] for i in body], [ms[i].gsc for i in body])
    deepest = max((st.depth[i] for i in points), default=None)
    # A ReLU of an already rectified input is the identity by construction, and one whose input is exactly
    # zero sits on a dead branch: neither is a collapsed domain.
    nonlin = [x for x in layers if x.kind == NONLINEARITY and x.sign_diversity is not None and not x.rectified
              and not x.zero_input]
    defects = [x.orthogonality_defect for x in layers if x.orthogonality_defect is not None]
    ids = {n.name: i for i, n in graph.nodes.items()}
    return Summary(
        compositional_depth=st.compositional_depth,
        effective_depth=paths.mean if paths else None,
        effective_depth_p5=paths.p5 if paths else None,
        effective_depth_p95=paths.p95 if paths else None,
        gsc_max=max((ms[i].gsc for i in points), default=None),
        gsc_input=next((ms[i].gsc for i in points if st.depth[i] == deepest), None),
        explosion_rate=fit.rate if fit else None, explosion_fit_r2=fit.r2 if fit else None,
        min_sign_diversity=min((x.sign_diversity for x in nonlin), default=None),
        min_relative_spread=min((x.relative_spread for x in nonlin if x.relative_spread is not None), default=None),
        mean_orthogonality_defect=sum(defects) / len(defects) if defects else None,
        min_preact_std=min((x.preact_std for x in nonlin), default=None),
        spine_points=len(points), fit_points=len(body),
        gsc_anchor=graph.nodes[measured.anchor].name if measured.anchor else None,
        parameter_coverage=coverage,
        **_summary_errors(graph, measured, redrawn, points, body, deepest, required,
                          [(ids[x.name], x.relative_spread is not None) for x in nonlin]),
    )


@dataclass
class Redrawn:
    """Every node's figures under the error bars' redraws (``errorbars``)."""

    gsc: dict[str, errorbars.Draws | None]
    collapse: dict[str, errorbars.CollapseDraws | None]
    shares: dict[tuple[str, str], errorbars.Draws]
    batch: int = 0                   # rows the bootstrap resampled: samples, or runs of them (stats.GROUPS)
    _layer_bars: dict[str, dict] | None = None

    def bar(self, d: errorbars.Draws | None) -> float | None:
        return errorbars.half_width(d, self.batch)

    def layer_errors(self, i: str) -> dict:
        if self._layer_bars is None:        # every node's bars at once (``errorbars.half_widths``)
            keys = sorted(set(self.gsc) | set(self.collapse))
            per = [(self.gsc.get(i), *(getattr(self.collapse.get(i), f, None) for f in COLLAPSE_BARS))
                   for i in keys]
            widths = iter(errorbars.half_widths([d for row in per for d in row], self.batch))
            self._layer_bars = {i: dict(zip(LAYER_BARS, widths)) for i in keys}
        return self._layer_bars.get(i, dict.fromkeys(LAYER_BARS))


COLLAPSE_BARS = ("sign_diversity", "relative_spread", "nonlinearity")
LAYER_BARS = ("gsc_error",) + tuple(f + "_error" for f in COLLAPSE_BARS)


def _redraw(measured: Measured) -> Redrawn:
    ps = measured.per_sample
    if ps is None or ps.batch is None or ps.batch < 2:
        return Redrawn({}, {}, {})
    boot = errorbars.Bootstrap(stats.groups(ps.batch), measured.probe.seed + 2)   # its rows: samples or runs
    gsc = errorbars.gsc_all(boot, {i: (m.grad_ps, m.value_ps, m.numel, m.draw_sums, m.norm or 0.0)
                                   for i, m in measured.measures.items() if m.gsc is not None},
                            ps.draws, ps.y_ps, _y_norm(measured))
    collapse = errorbars.collapse_all(boot, {i: m.collapse.items for i, m in measured.measures.items()
                                             if m.collapse is not None})
    return Redrawn(gsc, collapse, _share_draws(boot, ps), boot.batch)


def _y_norm(measured: Measured) -> float:
    """||Y|| the GSCs were taken relative to (the same for every node)."""
    return next((m.y_norm for m in measured.measures.values() if m.gsc is not None and m.y_norm), 0.0)


def _share_draws(boot: errorbars.Bootstrap, ps: PerSample) -> dict[tuple[str, str], errorbars.Draws]:
    """Each split side's share of the squared gradient, redrawn (resamples, and each draw alone)."""
    by_end: dict[str, dict[str, tuple]] = {}
    for key, parts in ps.alias_ps.items():
        if parts and all(p is not None for p in parts):
            by_end.setdefault(key[0], {})[key[1]] = (boot.sums(sum(parts)),
                                                   torch.tensor(ps.alias_sq.get(key, []), dtype=torch.float64))
    shares = {}
    for end, sides in by_end.items():
        total = sum(b for b, _ in sides.values())
        lengths = {len(d) for _, d in sides.values()}
        per_draw = ps.draws > 1 and lengths == {ps.draws}
        draw_total = sum(d for _, d in sides.values()) if per_draw else None
        for o, (b, d) in sides.items():
            shares[(end, o)] = errorbars.Draws(b / total, d / draw_total if per_draw else None)
    return shares


def _summary_errors(graph: Graph, measured: Measured, redrawn: Redrawn, points: list[str], body: list[str],
                    deepest: int | None, required: set[str], nonlin: list[tuple[str, bool]]) -> dict:
    """The summary's error bars: each headline figure recomputed under the same redraws."""
    if not redrawn.gsc:
        return {}
    st, ms = graph.structure, measured.measures
    gi = next((i for i in points if st.depth[i] == deepest), None)
    fitted = [i for i in body if (ms[i].gsc or 0) > 0]
    depth = _depth_draws(graph, redrawn, required) if st.chain else None
    c = {i: redrawn.collapse.get(i) for i, _ in nonlin}
    spread = [c[i] and c[i].relative_spread for i, has_spread in nonlin if has_spread]
    return {
        "gsc_input_error": redrawn.bar(redrawn.gsc.get(gi)) if gi else None,
        "gsc_max_error": redrawn.bar(errorbars.maximum([redrawn.gsc.get(i) for i in points])),
        "explosion_rate_error": redrawn.bar(errorbars.rate([st.depth[i] for i in fitted],
                                                                   [redrawn.gsc.get(i) for i in fitted])),
        "effective_depth_error": redrawn.bar(depth),
        "min_sign_diversity_error": redrawn.bar(errorbars.minimum([x and x.sign_diversity
                                                                            for x in c.values()])),
        "min_relative_spread_error": redrawn.bar(errorbars.minimum(spread)),
    }


def _depth_draws(graph: Graph, redrawn: Redrawn, required: set[str]) -> errorbars.Draws | None:
    """The effective depth (its mean) under the redraws of the split shares."""
    chain, shares = graph.structure.chain, redrawn.shares
    batch = graph_structure.effective_depth_mean(chain, {k: v.batch for k, v in shares.items()}, required)
    if batch is None:
        return None
    if not isinstance(batch, torch.Tensor):          # no measured share on the way: the figure is exact
        return errorbars.Draws(torch.full((errorbars.RESAMPLES + 1,), float(batch), dtype=torch.float64))
    draws = None
    if shares and all(v.draws is not None for v in shares.values()):
        draws = graph_structure.effective_depth_mean(chain, {k: v.draws for k, v in shares.items()}, required)
    return errorbars.Draws(batch, draws if isinstance(draws, torch.Tensor) else None)


def _bypassed(graph: Graph) -> set[str]:
    """Nodes a residual skip carries the data past: everything on a block's branch (back to its block
    input), and nonlinearities that read a block's sum directly (a post-activation ReLU)."""
    st = graph.structure
    found: set[str] = set()
    for m in st.merges:
        todo = list(m.branches)
        while todo:
            v = todo.pop()
            if v in found or v == m.block_input or v not in st.data:
                continue
            found.add(v)
            todo.extend(graph.live_preds(v))
    merges = {m.id for m in st.merges}
    for i, n in graph.nodes.items():
        if n.kind == NONLINEARITY and i in st.data:
            live = graph.live_preds(i)
            if live and graph.past_no_ops(live[0]) in merges:
                found.add(i)
    return found


def _operand_norm(measured: Measured, merge: Node, operand: str) -> float | None:
    """The norm of one operand of a merge, as the merge read it."""
    m = measured.measures.get(merge.id)
    if m is None or not m.operands or operand not in merge.preds:
        return None
    return m.operands[merge.preds.index(operand)]


def split_shares(alias_sq: dict[tuple[str, str], list]) -> dict[tuple[str, str], float]:
    """Each side's part of the squared gradient a split sends to its start: (split end, operand) -> share."""
    sums: dict[str, dict[str, float]] = {}
    for (end, operand), v in alias_sq.items():
        if v:
            sums.setdefault(end, {})[operand] = float(sum(v))
    shares = {}
    for end, sides in sums.items():
        total = sum(sides.values())
        if math.isfinite(total) and total > 0:
            shares.update({(end, o): x / total for o, x in sides.items()})
    return shares


def _coverage(graph: Graph, trainable: dict[str, int]) -> tuple[float | None, tuple[tuple[str, int, str], ...]]:
    """The fraction of trainable parameter elements the probe measured, and the largest modules it did not,
    each with why (the reason of its largest unmeasured parameter)."""
    total = sum(trainable.values())
    if total == 0:
        return None, ()
    missed: dict[str, int] = {}
    why: dict[str, tuple[int, str]] = {}
    for name, numel in trainable.items():
        if name not in graph.measured_params:
            module = name.rsplit(".", 1)[0] if "." in name else name  # a parameter of the model itself: its name
            missed[module] = missed.get(module, 0) + numel
            reason = graph.unmeasured_why.get(name, "never read by an op the capture recognised")
            if numel > why.get(module, (-1, ""))[0]:
                why[module] = (numel, reason)
    seen = total - sum(missed.values())
    ranked = sorted(missed.items(), key=lambda kv: (-kv[1], kv[0]))[:UNMEASURED_LISTED]
    return seen / total, tuple((module, count, why[module][1]) for module, count in ranked)
