"""What the three planners share: the plan type, random orthogonal matrices, nonlinearity gains, and
walks over the captured graph (``gradlint.capture.Graph``), whichever tier captured it."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import ops
from ..capture import OUTPUT, Graph, static_graph
from ..capture.base import parameter_names, value_users
from ..errors import GradlintError, one_line


class InitError(GradlintError):
    """A model the requested initialisation does not support; the model was left unchanged."""

    kind = "input"


@dataclass(frozen=True)
class InitChanges:
    """What an initialisation changed: parameter names (as in ``model.named_parameters()``), and the
    modules or merges it left alone, each with the reason."""

    changed: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()


Make = Callable[[torch.Generator | None], torch.Tensor]


@dataclass
class Plan:
    actions: list[tuple[torch.Tensor, Make]]
    changes: InitChanges


class Builder:
    """Collects parameter writes (deduplicated, in order) and skipped items for one model."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.names = parameter_names(model)
        self.actions: list[tuple[torch.Tensor, Make]] = []
        self.changed: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        self._done: set[int] = set()

    def set(self, param: torch.Tensor | None, make: Make) -> None:
        if param is None or id(param) in self._done:
            return
        self._done.add(id(param))
        if id(param) not in self.names:
            # a parametrized weight (torch.nn.utils.parametrize, a weight-norm hook) is computed from other
            # parameters on each access: writing it would change nothing
            self.skip(f"a {tuple(param.shape)} weight", "computed by a parametrization from other parameters")
            return
        self.actions.append((param, make))
        self.changed.append(self.names.get(id(param), "<unnamed parameter>"))

    def zero(self, param: torch.Tensor | None) -> None:
        self.set(param, constant(0.0))

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append((name, reason))

    def build(self) -> Plan:
        return Plan(self.actions, InitChanges(tuple(self.changed), tuple(self.skipped)))


def constant(value: float) -> Make:
    return lambda generator: torch.tensor(value, dtype=torch.float64)


def graph_of(model: nn.Module, graph: Graph | None, who: str, needs: str) -> Graph:
    """The graph to plan on: the one given (the probe's), else a torch.fx trace of the model."""
    if graph is not None:
        if not graph.sees_structure:
            raise InitError(f"{who}: neither torch.fx nor torch.export could capture {type(model).__name__}, so "
                            f"its structure cannot be checked; {needs}")
        return graph
    try:
        return static_graph(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: cannot check the structure
        raise InitError(f"{who}: torch.fx cannot trace {type(model).__name__} ({one_line(exc)}); {needs}") from exc


# --------------------------------------------------------------------------- random orthogonal matrices


def semi_orthogonal(rows: int, cols: int, generator: torch.Generator | None) -> torch.Tensor:
    """A Haar-distributed (rows x cols) matrix with orthonormal rows (rows <= cols) or columns, float64."""
    device = generator.device if generator is not None else torch.device("cpu")
    n, k = max(rows, cols), min(rows, cols)
    a = torch.randn(n, k, generator=generator, dtype=torch.float64, device=device)
    q, r = torch.linalg.qr(a)
    d = torch.sign(torch.diagonal(r))
    q = q * torch.where(d == 0, torch.ones_like(d), d)
    return (q if rows >= cols else q.T).cpu()


def chunked_orthogonal(shape: torch.Size, chunk_rows: int, scale: float = 1.0) -> Make:
    """A 2-D weight made of row chunks, each (semi-)orthogonal on its own (RNN gates, q/k/v)."""
    rows, cols = int(shape[0]), int(shape[1])

    def make(generator):
        parts = [semi_orthogonal(min(chunk_rows, rows - i), cols, generator) for i in range(0, rows, chunk_rows)]
        return torch.cat(parts, 0) * scale

    return make


def delta_orthogonal(module: nn.modules.conv._ConvNd, scale: float) -> Make:
    transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
    shape = tuple(module.weight.shape)
    groups = module.groups
    in_g, out_g = module.in_channels // groups, module.out_channels // groups
    centre = tuple(k // 2 for k in shape[2:])

    def make(generator):
        w = torch.zeros(shape, dtype=torch.float64)
        for g in range(groups):
            q = semi_orthogonal(out_g, in_g, generator) * scale  # the map: out_g x in_g
            if transposed:  # weight is (in, out / groups, *k)
                w[(slice(g * in_g, (g + 1) * in_g), slice(None)) + centre] = q.T
            else:           # weight is (out, in / groups, *k)
                w[(slice(g * out_g, (g + 1) * out_g), slice(None)) + centre] = q
        return w

    return make


# --------------------------------------------------------------------------- gains


_QUAD_POINTS = 20001   # odd, for Simpson's rule
_QUAD_RANGE = 10.0
_quadrature: tuple[torch.Tensor, torch.Tensor] | None = None


def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    """Points z and weights w with sum(w f(z)) = E[f(z)], z ~ N(0, 1) (composite Simpson, float64)."""
    global _quadrature
    if _quadrature is None:
        z = torch.linspace(-_QUAD_RANGE, _QUAD_RANGE, _QUAD_POINTS, dtype=torch.float64)
        h = 2 * _QUAD_RANGE / (_QUAD_POINTS - 1)
        simpson = torch.ones(_QUAD_POINTS, dtype=torch.float64)
        simpson[1:-1:2] = 4.0
        simpson[2:-1:2] = 2.0
        pdf = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        _quadrature = (z, simpson * (h / 3.0) * pdf)
    return _quadrature


def nonlinearity_gain(phi: Callable[[torch.Tensor], torch.Tensor] | nn.Module) -> float:
    """``1 / sqrt(E[phi(z)^2])`` for z ~ N(0, 1), by quadrature in float64 (1.0 when undefined).

    ``phi`` is a function or a nonlinearity module (evaluated on a float64 copy in eval mode, so an
    in-place, random or parametrised module is safe to pass).
    """
    key = getattr(phi, "key", None)  # captured phis of one function and its settings share a key
    if key is not None and key in _gains:
        return _gains[key]
    second = _second_moment(ops.module_phi(phi) if isinstance(phi, nn.Module) else phi)
    gain = 1.0 / math.sqrt(second) if second is not None and second > 0 else 1.0
    if key is not None:
        _gains[key] = gain
    return gain


_gains: dict[int, float] = {}


def _second_moment(phi: Callable[[torch.Tensor], torch.Tensor] | None) -> float | None:
    if phi is None:
        return None
    z, w = _grid()
    try:
        with torch.no_grad():
            y = phi(z.clone())
    except Exception:  # noqa: BLE001 - a phi we cannot evaluate has no known gain
        return None
    if not isinstance(y, torch.Tensor) or y.shape[0] != z.shape[0]:
        return None
    y = y.detach().double().reshape(z.shape[0], -1)
    if not bool(torch.isfinite(y).all()):
        return None
    return float((w[:, None] * y * y).sum(0).mean())


def phi_at_zero(phi: Callable[[torch.Tensor], torch.Tensor] | None) -> float | None:
    if phi is None:
        return None
    try:
        with torch.no_grad():
            y = phi(torch.zeros(1, dtype=torch.float64))
        return float(y.reshape(-1)[0])
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------- graph walks


def fed_nonlinearity(graph: Graph, start: str, order: dict[str, int]) -> str | None:
    """The first nonlinearity (in forward order) that ``start``'s value reaches through single-input ops.

    None when a merge, another layer, a multi-input op or the output comes first.  ``order`` is each
    node's forward position.
    """
    users = value_users(graph, start)
    if OUTPUT in users:
        return None
    heap = [(order[u], u) for u in users]
    heapq.heapify(heap)
    seen: set[str] = set()
    while heap:
        _, node_id = heapq.heappop(heap)
        if node_id in seen:
            continue
        seen.add(node_id)
        node = graph.nodes[node_id]
        if node.kind == ops.NONLINEARITY:
            return node_id
        if node.kind in (ops.MERGE, ops.LAYER, ops.EMBEDDING) or len(graph.live_preds(node_id)) > 1:
            return None
        users = value_users(graph, node_id)
        if OUTPUT in users:
            return None
        for u in users:
            heapq.heappush(heap, (order[u], u))
    return None


def label(graph: Graph, node_id: str) -> str:
    node = graph.nodes[node_id]
    return f"'{node.module if node.module is not None else node.name}' ({node.op})"


def param(model: nn.Module, name: str | None) -> torch.Tensor | None:
    if name is None:
        return None
    try:
        return model.get_parameter(name)
    except AttributeError:
        return None
