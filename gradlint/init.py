"""Put a model into the paper's orthogonal initial state (paper notes section 6 and section 10).

Three changes, each available as an in-place function that returns the model, and through
``apply(model, change)`` / ``plan(model, change)`` that say what was (or would be) changed:

- ``orthogonal_`` ("orthogonal"): every depth-bearing module gets a (semi-)orthogonal weight times
  the gain that keeps the pre-activation scale of the nonlinearity it feeds; convolutions get the
  delta-orthogonal kernel of Xiao et al. 2018; biases are zeroed.
- ``looks_linear_`` ("looks-linear"): the mirrored construction of Balduzzi et al. 2017 for ReLU
  MLPs, so the whole network is exactly an orthogonal (or projecting) linear map at init.
- ``zero_init_residual_`` ("zero-residual"): the last affine of every residual branch is zeroed, so
  every block is exactly the identity at init (torchvision's ``zero_init_residual``, Fixup, SkipInit).

Every function changes parameter values only: no module is replaced, no buffer is written, no
train/eval mode or ``requires_grad`` flag is touched.  Everything is checked before the first
parameter is written, so a refusal (``InitError``) leaves the model exactly as it was.  Random numbers
come from the ``generator`` argument (the global RNG when it is None), so a seeded generator gives
bit-identical parameters.
"""

from __future__ import annotations

import copy
import heapq
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from . import changes, ops
from .probe import _arg_nodes, _is_view, _tensor_args
from .errors import GradlintError, one_line

__all__ = [
    "CHANGES",
    "InitChanges",
    "InitError",
    "apply",
    "looks_linear_",
    "nonlinearity_gain",
    "orthogonal_",
    "plan",
    "zero_init_residual_",
]

CHANGES = tuple(changes.CHANGES)


class InitError(GradlintError):
    """A model the requested initialisation does not support; the model was left unchanged."""

    kind = "input"


@dataclass(frozen=True)
class InitChanges:
    """What an initialisation changed: parameter names (as in ``model.named_parameters()``), and the
    modules or merges it left alone, each with the reason."""

    changed: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- public API


def orthogonal_(model: nn.Module, *, generator: torch.Generator | None = None) -> nn.Module:
    """Orthogonal initial state: every depth-bearing module gets a (semi-)orthogonal weight.

    - ``Linear``: ``W = gain * s * Q`` with Q (semi-)orthogonal (QR of a Gaussian, sign-fixed
      diagonal: Haar distributed) and ``s = sqrt(max(1, out / in))``.  For a contracting or square
      layer Q has orthonormal rows and each output unit keeps the per-unit variance of the input;
      for an expanding layer Q has orthonormal columns whose rows have squared norm in/out, which
      ``s`` restores, so the per-unit pre-activation variance is preserved in both cases.
    - ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``: delta-orthogonal (Xiao et al. 2018): every
      spatial tap is zero except the centre one (index ``k // 2`` in each spatial dim), which holds
      ``gain * s * Q`` per group (out_per_group x in_per_group; depthwise convs get a random sign
      per channel).  For transposed convs the stored slice is the transpose of that map.
    - ``RNN/LSTM/GRU`` (and their cells): every gate chunk of every input and hidden weight (and
      the LSTM projection) orthogonal, gain 1.  ``MultiheadAttention``: the q, k, v chunks of the
      input projection and ``out_proj`` orthogonal, gain 1 (``bias_k``/``bias_v`` are left alone).
    - All biases of these modules are set to zero.

    ``gain = 1 / sqrt(E[phi(z)^2])``, z ~ N(0, 1), for the nonlinearity phi the layer feeds (found
    on the torch.fx graph by walking forward through norms, views, dropout, pooling and other
    single-input ops; a layer that reaches a merge, another layer or the output first feeds the
    identity: gain 1).  That is sqrt(2) for ReLU, sqrt(2 / (1 + a^2)) for leaky ReLU, about 1.59
    for tanh, 1 for SELU.  When the model cannot be traced the nonlinearity is the next one in
    ``model.named_modules()`` order before the next depth-bearing module.

    Left unchanged (see ``plan``): Bilinear, functional layers (``F.linear`` with a parameter,
    ``x @ W``), lazy modules not yet materialised, and weights tied to a non-depth-bearing module.
    Returns ``model``.
    """
    apply(model, "orthogonal", generator=generator)
    return model


def looks_linear_(model: nn.Module, *, generator: torch.Generator | None = None) -> nn.Module:
    """Looks-linear initialisation of a ReLU-family MLP (Balduzzi et al. 2017; paper notes section 6).

    With widths d_1 ... d_L of the hidden layers (all even), h_i = d_i / 2, and a_i the negative
    slope of the activation after layer i (0 for ReLU):

    - first layer (d_in -> d_1): ``W = [P; -P]``, P (h_1 x d_in) with orthonormal rows (orthonormal
      columns when h_1 > d_in);
    - hidden layers (d_i -> d_{i+1}): ``W = [[A, -A], [-A, A]] / (1 + a_i)``, A (h_{i+1} x h_i)
      (semi-)orthogonal;
    - output layer (d_L -> out): ``W = [B, -B] / (1 + a_L)``, B (out x h_L) (semi-)orthogonal;
    - all biases zero.

    Since phi(u) - phi(-u) = (1 + a) u, every hidden activation is [phi(u); phi(-u)] and the network
    is exactly the linear map ``B A_L ... A_2 P`` at init: an isometry when P and B are.

    Supported (checked on the torch.fx graph): one input -> [flatten/view/reshape/Identity/Dropout]
    -> Linear -> [BatchNorm1d | LayerNorm or RMSNorm over the last dim] -> ReLU | LeakyReLU | PReLU
    | F.relu | F.leaky_relu -> [Dropout] -> Linear -> ... -> Linear -> output.  A norm with weight 1
    and bias 0 keeps the mirrored form (BatchNorm is odd per unit; a mirrored vector has zero mean,
    so LayerNorm only rescales it), so this function also resets the affine weight of those norms
    to 1 and their bias to 0.  (A BatchNorm in eval mode uses its running mean, which must then be
    zero, as it is when fresh; buffers are not touched.  Dropout in train mode masks the two units
    of a pair independently, so the map is exactly linear only in eval mode.)  A PReLU must give
    both units of a mirrored pair the same slope, as it does at its default init.

    Refused with ``InitError`` (the model is left unchanged): any other nonlinearity, odd hidden
    widths, convolutions (use ``orthogonal_``), residual merges, branching or multi-input graphs,
    functional linear layers, models torch.fx cannot trace, and models without a Linear layer.
    Returns ``model``.
    """
    apply(model, "looks-linear", generator=generator)
    return model


def zero_init_residual_(model: nn.Module) -> nn.Module:
    """Zero the last affine of every residual branch, so every residual block is the identity at init.

    For each residual merge of the traced graph (an add whose operands pass through different numbers
    of depth-bearing layers), each branch operand is followed backwards through single-input ops that
    keep 0 at 0 (views, dropout, pooling, activations with phi(0) = 0 such as ReLU, GELU, tanh, and
    scaling by a Python number) to its last affine, which is zeroed:

    - a norm module with affine parameters (BatchNorm, LayerNorm, GroupNorm, RMSNorm): weight and
      bias (torchvision's ``zero_init_residual=True`` zeroes the last BN weight of each block);
    - a Linear, Bilinear, Conv or ConvTranspose module: weight and bias; MultiheadAttention: its
      ``out_proj`` weight and bias; functional layers and norms whose weight is a parameter;
    - a multiplication by a parameter (layer scale): that parameter.

    A branch with no such affine, or whose walk meets a multi-input op, a value that also feeds
    other ops, or a module used at several places, is left alone and listed in ``plan(...)
    .skipped``.  The skip path (identity or projection) is never touched.  Raises ``InitError`` when
    the model has no residual merge or cannot be traced.  Returns ``model``.
    """
    apply(model, "zero-residual")
    return model


def plan(model: nn.Module, change: str) -> InitChanges:
    """What ``apply(model, change)`` would change, without changing anything (raises as it would)."""
    return _plan(model, change).changes


def apply(model: nn.Module, change: str, *, generator: torch.Generator | None = None) -> InitChanges:
    """Apply one change ("orthogonal", "looks-linear" or "zero-residual") in place; say what changed."""
    p = _plan(model, change)
    with torch.no_grad():
        for param, make in p.actions:
            param.copy_(make(generator))
    return p.changes


# --------------------------------------------------------------------------- planning


_Make = Callable[[torch.Generator | None], torch.Tensor]


@dataclass
class _Plan:
    actions: list[tuple[torch.Tensor, _Make]]
    changes: InitChanges


class _Builder:
    """Collects parameter writes (deduplicated, in order) and skipped items for one model."""

    def __init__(self, model: nn.Module):
        self.names = {id(p): n for n, p in model.named_parameters()}
        self.actions: list[tuple[torch.Tensor, _Make]] = []
        self.changed: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        self._done: set[int] = set()

    def set(self, param: torch.Tensor | None, make: _Make) -> None:
        if param is None or id(param) in self._done:
            return
        self._done.add(id(param))
        self.actions.append((param, make))
        self.changed.append(self.names.get(id(param), "<unnamed parameter>"))

    def zero(self, param: torch.Tensor | None) -> None:
        self.set(param, _constant(0.0))

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append((name, reason))

    def build(self) -> _Plan:
        return _Plan(self.actions, InitChanges(tuple(self.changed), tuple(self.skipped)))


def _plan(model: nn.Module, change: str) -> _Plan:
    if not isinstance(model, nn.Module):
        raise InitError(f"expected an nn.Module, got {type(model).__name__}")
    if change == "orthogonal":
        return _orthogonal_plan(model)
    if change == "looks-linear":
        return _looks_linear_plan(model)
    if change == "zero-residual":
        return _zero_residual_plan(model)
    raise InitError(f"unknown initialisation {change!r}; choose one of {', '.join(CHANGES)}")


def _constant(value: float) -> _Make:
    return lambda generator: torch.tensor(value, dtype=torch.float64)


def _trace(model: nn.Module, who: str, needs: str):
    from .probe import static_graph  # probe imports much of the package; keep this module light

    try:
        return static_graph(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: cannot check the structure
        raise InitError(f"{who}: torch.fx cannot trace {type(model).__name__} ({one_line(exc)}); "
                        f"{needs}") from exc


# --------------------------------------------------------------------------- random orthogonal matrices


def _semi_orthogonal(rows: int, cols: int, generator: torch.Generator | None) -> torch.Tensor:
    """A Haar-distributed (rows x cols) matrix with orthonormal rows (rows <= cols) or columns, float64."""
    device = generator.device if generator is not None else torch.device("cpu")
    n, k = max(rows, cols), min(rows, cols)
    a = torch.randn(n, k, generator=generator, dtype=torch.float64, device=device)
    q, r = torch.linalg.qr(a)
    d = torch.sign(torch.diagonal(r))
    q = q * torch.where(d == 0, torch.ones_like(d), d)
    return (q if rows >= cols else q.T).cpu()


def _chunked_orthogonal(shape: torch.Size, chunk_rows: int, scale: float = 1.0) -> _Make:
    """A 2-D weight made of row chunks, each (semi-)orthogonal on its own (RNN gates, q/k/v)."""
    rows, cols = int(shape[0]), int(shape[1])

    def make(generator):
        parts = [_semi_orthogonal(min(chunk_rows, rows - i), cols, generator) for i in range(0, rows, chunk_rows)]
        return torch.cat(parts, 0) * scale

    return make


def _delta_orthogonal(module: nn.modules.conv._ConvNd, scale: float) -> _Make:
    transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
    shape = tuple(module.weight.shape)
    groups = module.groups
    in_g, out_g = module.in_channels // groups, module.out_channels // groups
    centre = tuple(k // 2 for k in shape[2:])

    def make(generator):
        w = torch.zeros(shape, dtype=torch.float64)
        for g in range(groups):
            q = _semi_orthogonal(out_g, in_g, generator) * scale  # the map: out_g x in_g
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
    second = _second_moment(_module_phi(phi) if isinstance(phi, nn.Module) else phi)
    return 1.0 / math.sqrt(second) if second is not None and second > 0 else 1.0


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


def _module_phi(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    try:
        m = copy.deepcopy(module).to(torch.float64).eval()
    except Exception:  # noqa: BLE001
        return None
    channels = int(getattr(m, "num_parameters", 1)) if isinstance(m, nn.PReLU) else 1

    def phi(z: torch.Tensor) -> torch.Tensor:
        return m(z[:, None].repeat(1, channels))

    return phi


_BY_NAME: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu, "relu6": F.relu6, "leaky_relu": F.leaky_relu, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "selu": F.selu, "gelu": F.gelu, "silu": F.silu, "elu": F.elu,
}


def _node_phi(node: fx.Node, gm: fx.GraphModule) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """phi of a nonlinearity node: the module itself, the function with its constant arguments, or by name."""
    if node.op == "call_module":
        return _module_phi(gm.get_submodule(str(node.target)))
    rest, kwargs = node.args[1:], dict(node.kwargs)
    kwargs.pop("inplace", None)
    target = node.target
    if not _arg_nodes((rest, kwargs)):  # constant extra arguments: evaluate the op itself
        if node.op == "call_function":
            return lambda z: target(z, *rest, **kwargs)
        if node.op == "call_method" and isinstance(target, str):
            return lambda z: getattr(z, target)(*rest, **kwargs)
    name = target if isinstance(target, str) else getattr(target, "__name__", "")
    return _BY_NAME.get(name.strip("_"))


def _phi_at_zero(phi: Callable[[torch.Tensor], torch.Tensor] | None) -> float | None:
    if phi is None:
        return None
    try:
        with torch.no_grad():
            y = phi(torch.zeros(1, dtype=torch.float64))
        return float(y.reshape(-1)[0])
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------- graph helpers


def _is_shape_query(node: fx.Node) -> bool:
    """Uses of a value that read its shape only (they carry no values onward)."""
    if node.op == "call_function":
        return node.target is getattr or node.target in (torch.numel,)
    return node.op == "call_method" and node.target in ("size", "dim", "numel", "ndimension", "nelement")


def _value_users(node: fx.Node) -> list[fx.Node]:
    return [u for u in node.users if not _is_shape_query(u)]


def _live_preds(sg, node: fx.Node) -> list[str]:
    rec = sg.by_node.get(node)
    return [p for p in rec.preds if p in sg.structure.reachable] if rec is not None else []


def _module_nodes(gm: fx.GraphModule) -> dict[str, list[fx.Node]]:
    out: dict[str, list[fx.Node]] = {}
    for n in gm.graph.nodes:
        if n.op == "call_module":
            out.setdefault(str(n.target), []).append(n)
    return out


def _fed_nonlinearity(sg, start: fx.Node, order: dict[fx.Node, int] | None = None) -> fx.Node | None:
    """The first nonlinearity (in graph order) that ``start``'s value reaches through single-input ops.

    None when a merge, another layer, a multi-input op or the output comes first.  ``order`` (node ->
    position) may be passed in when many layers of one graph are asked about.
    """
    order = order if order is not None else {n: i for i, n in enumerate(sg.gm.graph.nodes)}
    by_name = {n.name: n for n in order}
    heap = [(order[u], u.name) for u in _value_users(start)]
    heapq.heapify(heap)
    seen: set[str] = set()
    while heap:
        _, name = heapq.heappop(heap)
        if name in seen:
            continue
        seen.add(name)
        node = by_name[name]
        if node.op == "output":
            return None
        rec = sg.by_node[node]
        if rec.kind == "nonlinearity":
            return node
        if rec.kind in ("merge", "layer", "embedding") or len(_live_preds(sg, node)) > 1:
            return None
        for u in _value_users(node):
            heapq.heappush(heap, (order[u], u.name))
    return None


# --------------------------------------------------------------------------- orthogonal


_HANDLED = (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention)


def _inside(name: str, top: str) -> bool:
    """Whether module ``name`` is a proper descendant of module ``top`` ("" is the root)."""
    return name != top and (top == "" or name.startswith(top + "."))


def _orthogonal_plan(model: nn.Module) -> _Plan:
    b = _Builder(model)
    modules = list(model.named_modules())
    depth = [(name, m) for name, m in modules if isinstance(m, ops.DEPTH_MODULES)]
    # Submodules of a depth-bearing module (MultiheadAttention's out_proj) belong to it.
    tops: list[tuple[str, nn.Module]] = []
    for name, m in depth:
        if not any(_inside(name, t) for t, _ in tops):
            tops.append((name, m))
    top_ids = {id(m) for _, m in tops}

    sg = None
    if not isinstance(model, ops.DEPTH_MODULES):  # a bare layer traces to its functional form
        try:
            from .probe import static_graph

            sg = static_graph(model)
        except Exception:  # noqa: BLE001 - fall back to module order
            sg = None
    gains = _gains_from_graph(sg) if sg is not None else _gains_from_order(modules)

    owners: dict[int, list[str]] = {}
    for pname, p in model.named_parameters(remove_duplicate=False):
        owners.setdefault(id(p), []).append(pname)
    module_by_name = dict(modules)

    def tied(name: str, param: torch.Tensor | None) -> str | None:
        """The name of a module outside the depth-bearing layers that shares ``param``, if any."""
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
        gain = gains.get(name, 1.0)
        if isinstance(m, nn.Linear):
            s = math.sqrt(max(1.0, m.out_features / m.in_features))
            b.set(m.weight, _chunked_orthogonal(m.weight.shape, m.weight.shape[0], gain * s))
            b.zero(m.bias)
        elif isinstance(m, nn.modules.conv._ConvNd):
            in_g, out_g = m.in_channels // m.groups, m.out_channels // m.groups
            b.set(m.weight, _delta_orthogonal(m, gain * math.sqrt(max(1.0, out_g / in_g))))
            b.zero(m.bias)
        elif isinstance(m, (nn.RNNBase, nn.RNNCellBase)):
            for pname, p in m.named_parameters(recurse=False):
                if pname.startswith("bias"):
                    b.zero(p)
                elif pname.startswith(("weight_ih", "weight_hh")):
                    b.set(p, _chunked_orthogonal(p.shape, m.hidden_size))
                elif p.dim() == 2:  # weight_hr (LSTM projection)
                    b.set(p, _chunked_orthogonal(p.shape, p.shape[0]))
        elif isinstance(m, nn.MultiheadAttention):
            if m.in_proj_weight is not None:
                b.set(m.in_proj_weight, _chunked_orthogonal(m.in_proj_weight.shape, m.embed_dim))
            for p in (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight):
                if p is not None:
                    b.set(p, _chunked_orthogonal(p.shape, p.shape[0]))
            b.zero(m.in_proj_bias)
            b.set(m.out_proj.weight, _chunked_orthogonal(m.out_proj.weight.shape, m.out_proj.weight.shape[0]))
            b.zero(m.out_proj.bias)
    if sg is not None:
        for node, rec in sg.by_node.items():
            if rec.kind == "layer" and node.op != "call_module":
                b.skip(rec.name, f"functional {rec.op}: its weight belongs to no depth-bearing module; left unchanged")
    return b.build()


def _gains_from_graph(sg) -> dict[str, float]:
    gains: dict[str, float] = {}
    order = {n: i for i, n in enumerate(sg.gm.graph.nodes)}
    module_gain: dict[str, float] = {}  # one shared activation module (self.relu) is evaluated once
    for target, nodes in _module_nodes(sg.gm).items():
        if sg.by_node[nodes[0]].kind != "layer":
            continue
        nl = _fed_nonlinearity(sg, nodes[0], order)
        if nl is None:
            gains[target] = 1.0
        elif nl.op == "call_module" and str(nl.target) in module_gain:
            gains[target] = module_gain[str(nl.target)]
        else:
            gains[target] = nonlinearity_gain(_node_phi(nl, sg.gm) or (lambda z: z))
            if nl.op == "call_module":
                module_gain[str(nl.target)] = gains[target]
    return gains


def _gains_from_order(modules: list[tuple[str, nn.Module]]) -> dict[str, float]:
    """Untraceable model: the first nonlinearity module after each layer, before the next layer."""
    gains: dict[str, float] = {}
    for i, (name, m) in enumerate(modules):
        if not isinstance(m, ops.DEPTH_MODULES):
            continue
        gain = 1.0
        for later, n in modules[i + 1:]:
            if _inside(later, name):
                continue
            if ops.nonlinear_family_of_module(n) is not None:
                gain = nonlinearity_gain(n)
                break
            if isinstance(n, ops.DEPTH_MODULES):
                break
        gains[name] = gain
    return gains


# --------------------------------------------------------------------------- looks-linear


_LL_NEEDS = ("looks-linear needs Linear layers separated by ReLU/LeakyReLU/PReLU (optionally "
             "BatchNorm1d/LayerNorm), with even hidden widths")
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_LL_VIEW_FUNCTIONS = {torch.flatten, torch.reshape}
_LL_VIEW_METHODS = {"view", "reshape", "flatten", "contiguous"}
_LL_RELU_FUNCTIONS = {F.relu, torch.relu, F.relu_, torch.relu_}
_LL_LEAKY_FUNCTIONS = {F.leaky_relu, F.leaky_relu_}


@dataclass
class _Act:
    label: str
    slope: torch.Tensor | float        # negative slope per unit (a tensor for PReLU) or a number


def _ll_refuse(message: str) -> InitError:
    return InitError(f"looks_linear_: {message}; {_LL_NEEDS}")


def _label(node: fx.Node, sg) -> str:
    if node.op == "call_module":
        return f"'{node.target}' ({type(sg.gm.get_submodule(str(node.target))).__name__})"
    rec = sg.by_node.get(node)
    return f"'{rec.name if rec else node.name}' ({rec.op if rec else node.target})"


def _looks_linear_plan(model: nn.Module) -> _Plan:
    name = type(model).__name__
    for mname, m in model.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            raise InitError(f"looks_linear_: layer '{mname}' ({type(m).__name__}) is a convolution; looks-linear "
                            "is for MLPs: use orthogonal_ for convolutional nets")
    sg = _trace(model, "looks_linear_", _LL_NEEDS)
    if sg.structure.merges:
        merge = sg.records[sg.structure.merges[0].id]
        raise _ll_refuse(f"'{merge.name}' ({merge.op}) is a residual merge in {name}, and residual nets are not "
                         "supported (use zero_init_residual_ for them)")
    inputs = [n for n in sg.gm.graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise _ll_refuse(f"{name} takes {len(inputs)} inputs, not one")

    linears: list[tuple[str, nn.Linear]] = []
    norms: list[nn.Module] = []
    acts: list[_Act] = []               # acts[i] follows linears[i]
    state = "start"                     # start | linear | norm | act
    node = inputs[0]
    while True:
        users = _value_users(node)
        if len(users) != 1:
            what = "is not used" if not users else f"feeds {len(users)} ops ({', '.join(u.name for u in users)})"
            raise _ll_refuse(f"{_label(node, sg)} {what}: the model is not a plain chain")
        node = users[0]
        if node.op == "output":
            if state != "linear":
                ending = "does not end with a Linear layer" if linears else "has no Linear layer"
                raise _ll_refuse(f"{name} {ending}")
            break
        kind, detail = _ll_classify(node, sg)
        label = _label(node, sg)
        if kind == "linear":
            if state not in ("start", "act"):
                raise _ll_refuse(f"layer {label} follows another Linear without a ReLU-family nonlinearity in between")
            linears.append((str(node.target), detail))
            state = "linear"
        elif kind == "norm":
            if state != "linear":
                raise _ll_refuse(f"{label} is not directly after a Linear layer")
            width = linears[-1][1].out_features
            if not _norm_fits(detail, width):
                raise _ll_refuse(f"{label} does not normalise the {width} features of the Linear before it")
            norms.append(detail)
            state = "norm"
        elif kind == "act":
            if state not in ("linear", "norm"):
                raise _ll_refuse(f"{label} does not follow a Linear layer")
            acts.append(_Act(label, detail))
            state = "act"
        elif kind == "dropout":
            if state not in ("start", "act"):
                raise _ll_refuse(f"{label} is only supported on the input or right after a nonlinearity")
        elif kind == "identity":
            pass
        elif kind == "view":
            if state != "start":
                raise _ll_refuse(f"{label} reshapes between layers; only the input may be flattened")
        else:
            raise _ll_refuse(detail.format(label=label))

    module_ids = [id(m) for _, m in linears]
    for lname, m in linears:
        if module_ids.count(id(m)) > 1:
            raise _ll_refuse(f"layer '{lname}' (Linear) is used more than once")
    if len(linears) < 2:
        raise _ll_refuse(f"{name} has a single Linear layer and no nonlinearity to mirror")
    for lname, m in linears[:-1]:
        if m.out_features % 2:
            raise _ll_refuse(f"layer '{lname}' (Linear {m.in_features}->{m.out_features}) has odd width "
                             f"{m.out_features} (units are mirrored in pairs)")
    slopes: list[torch.Tensor] = []
    for (lname, m), act in zip(linears[:-1], acts):
        h = m.out_features // 2
        a = _slope_vector(act, h, m.out_features)
        if bool((1.0 + a).abs().lt(1e-6).any()):
            raise _ll_refuse(f"{act.label} has negative slope -1, so phi(u) - phi(-u) = 0")
        slopes.append(a)

    b = _Builder(model)
    first = linears[0][1]
    h0 = first.out_features // 2
    b.set(first.weight, lambda g, h=h0, d=first.in_features: _mirror_rows(_semi_orthogonal(h, d, g)))
    b.zero(first.bias)
    for (_, m), a in zip(linears[1:], slopes):
        h_in = m.in_features // 2
        if m is linears[-1][1]:
            b.set(m.weight, lambda g, m=m, a=a, h=h_in: _mirror_cols(_semi_orthogonal(m.out_features, h, g) / (1 + a)))
        else:
            b.set(m.weight, lambda g, m=m, a=a, h=h_in: _mirror_both(
                _semi_orthogonal(m.out_features // 2, h, g) / (1 + a)))
        b.zero(m.bias)
    for n in norms:
        if getattr(n, "weight", None) is not None:
            b.set(n.weight, _constant(1.0))
        b.zero(getattr(n, "bias", None))
    return b.build()


def _mirror_rows(p: torch.Tensor) -> torch.Tensor:
    return torch.cat([p, -p], 0)


def _mirror_cols(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b, -b], 1)


def _mirror_both(a: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.cat([a, -a], 1), torch.cat([-a, a], 1)], 0)


def _norm_fits(norm: nn.Module, width: int) -> bool:
    if isinstance(norm, nn.BatchNorm1d):
        return norm.num_features == width
    shape = tuple(getattr(norm, "normalized_shape", ()))
    return shape == (width,)


def _slope_vector(act: _Act, h: int, width: int) -> torch.Tensor:
    a = act.slope
    if isinstance(a, torch.Tensor):
        a = a.detach().double().cpu().reshape(-1)
        if a.numel() == 1:
            return a.expand(h).clone()
        if a.numel() != width:
            raise _ll_refuse(f"{act.label} has {a.numel()} slopes for {width} units")
        if not torch.equal(a[:h], a[h:]):
            raise _ll_refuse(f"{act.label} gives mirrored units i and i + {h} different slopes")
        return a[:h].clone()
    return torch.full((h,), float(a), dtype=torch.float64)


def _ll_classify(node: fx.Node, sg) -> tuple[str, object]:
    """(kind, detail) of one op on the chain; kind "refuse" carries a message with a {label} slot."""
    rec = sg.by_node[node]
    other = "{label} is not supported"
    if node.op == "call_module":
        m = sg.gm.get_submodule(str(node.target))
        if isinstance(m, nn.LazyLinear):
            return "refuse", "layer {label} is a lazy Linear not materialised yet"
        if isinstance(m, nn.Linear):
            return "linear", m
        if isinstance(m, ops.DEPTH_MODULES):
            return "refuse", "layer {label} is not a Linear layer"
        if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())):
            return "norm", m
        if type(m) is nn.ReLU:
            return "act", 0.0
        if type(m) is nn.LeakyReLU:
            return "act", float(m.negative_slope)
        if type(m) is nn.PReLU:
            return "act", m.weight
        if isinstance(m, (nn.ReLU6, nn.RReLU)):
            return "refuse", "layer {label} is not a mirror-symmetric ReLU (phi(u) - phi(-u) is not proportional to u)"
        if ops.nonlinear_family_of_module(m) is not None:
            return "refuse", "layer {label} is not ReLU-family"
        if isinstance(m, nn.Identity):
            return "identity", None
        if isinstance(m, _DROPOUT):
            return "dropout", None
        if isinstance(m, nn.Flatten):
            return "view", None
        if isinstance(m, ops.NORM_MODULES):
            return "refuse", "{label} is not a BatchNorm1d or LayerNorm over the last dim"
        return "refuse", other
    if node.op == "call_function":
        fn = node.target
        if fn in _LL_RELU_FUNCTIONS:
            return "act", 0.0
        if fn in _LL_LEAKY_FUNCTIONS:
            slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
            if not isinstance(slope, (int, float)):
                return "refuse", "{label} has a negative slope that is not a constant"
            return "act", float(slope)
        if fn in (F.dropout, torch.dropout):
            return "dropout", None
        if fn in _LL_VIEW_FUNCTIONS:
            return "view", None
        if rec.kind == "nonlinearity":
            return "refuse", "{label} is not ReLU-family"
        if rec.kind == "layer":
            return "refuse", "{label} is a functional layer; looks-linear initialises nn.Linear modules only"
        return "refuse", other
    if node.op == "call_method":
        if node.target in ("relu", "relu_"):
            return "act", 0.0
        if node.target in _LL_VIEW_METHODS:
            return "view", None
        if rec.kind == "nonlinearity":
            return "refuse", "{label} is not ReLU-family"
        return "refuse", other
    return "refuse", other


# --------------------------------------------------------------------------- zero-residual


_ZERO_KEEPING_MODULES: tuple[type, ...] = (
    nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Flatten, nn.Unflatten,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd, nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle,
)
_ZERO_KEEPING_FUNCTIONS = set(ops.VIEW_FUNCTIONS) | {
    F.dropout, torch.dropout, F.dropout1d, F.dropout2d, F.dropout3d, torch.neg, operator.neg,
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.adaptive_max_pool1d,
    F.adaptive_max_pool2d, F.adaptive_max_pool3d, F.interpolate, F.pixel_shuffle, F.pixel_unshuffle,
}
_ZERO_KEEPING_METHODS = set(ops.VIEW_METHODS) | {"clone", "contiguous", "neg", "to", "float", "double", "half"}
_MUL_FUNCTIONS = {operator.mul, operator.imul, torch.mul}
_MUL_METHODS = {"mul", "mul_", "__mul__", "__rmul__"}
_DIV_FUNCTIONS = {operator.truediv, operator.itruediv, torch.div, torch.true_divide}
_DIV_METHODS = {"div", "div_", "__truediv__", "true_divide"}
_ZR_NEEDS = ("zero_init_residual_ needs residual adds x + f(x) in a model torch.fx can trace")


def _zero_residual_plan(model: nn.Module) -> _Plan:
    sg = _trace(model, "zero_init_residual_", _ZR_NEEDS)
    if not sg.structure.merges:
        raise InitError(f"zero_init_residual_: no residual connections found in {type(model).__name__}; "
                        "it needs adds whose operands pass through different numbers of depth-bearing "
                        "layers (x + f(x))")
    b = _Builder(model)
    node_of = {rec.id: n for n, rec in sg.by_node.items()}
    uses = _module_nodes(sg.gm)
    zeroer = _Zeroer(b, _parameter_uses(sg, uses))
    for merge in sg.structure.merges:
        merge_name = sg.records[merge.id].name
        for branch in merge.branches:
            reason = _zero_branch(sg, node_of[branch], uses, zeroer)
            if reason is not None:
                b.skip(merge_name, f"branch '{sg.records[branch].name}': {reason}; left unchanged")
    return b.build()


def _param_at(sg, node: fx.Node) -> torch.Tensor | None:
    """The parameter a constant operand comes from (a get_attr, possibly through views), else None."""
    for _ in range(8):
        if node.op == "get_attr":
            try:
                return sg.gm.get_parameter(str(node.target))
            except AttributeError:
                return None
        if not _is_view(node) or not node.args or not isinstance(node.args[0], fx.Node):
            return None
        node = node.args[0]
    return None


def _parameter_uses(sg, uses: dict[str, list[fx.Node]]) -> dict[int, int]:
    """How many places of the graph read each parameter: modules called, and get_attr values used."""
    count: dict[int, int] = {}
    for target, nodes in uses.items():
        for p in sg.gm.get_submodule(target).parameters():
            count[id(p)] = count.get(id(p), 0) + len(nodes)
    for n in sg.gm.graph.nodes:
        if n.op == "get_attr":
            try:
                p = sg.gm.get_parameter(str(n.target))
            except AttributeError:
                continue
            count[id(p)] = count.get(id(p), 0) + len(_value_users(n))
    return count


class _Zeroer:
    """Zeroes the parameters of one branch's last affine, unless one of them is read elsewhere too."""

    def __init__(self, builder: _Builder, param_uses: dict[int, int]):
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


def _zero_branch(sg, node: fx.Node, uses: dict[str, list[fx.Node]], b: _Zeroer) -> str | None:
    """Zero the last affine of a branch ending at ``node``; the reason it could not, or None."""
    reachable = sg.structure.reachable
    steps = 0
    while True:
        steps += 1
        if steps > 10_000:
            return "branch too long to follow"
        rec = sg.by_node[node]
        if len(_value_users(node)) > 1:
            return f"'{rec.name}' also feeds other ops, so zeroing it would change more than the branch"
        if rec.kind in ("input", "constant") or node.op in ("placeholder", "get_attr"):
            return "no affine layer (norm, layer or scale parameter) on the branch"
        live = [a for a in _tensor_args(node) if a.name in reachable]
        if rec.kind == "merge" or len(live) > 1:
            return f"the walk back reached '{rec.name}' ({rec.op}), an op with several inputs"
        if node.op == "call_module":
            target = str(node.target)
            m = sg.gm.get_submodule(target)
            shared = len(uses.get(target, [])) > 1
            if isinstance(m, (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.MultiheadAttention)
                          + ops.NORM_MODULES):
                if shared:
                    return f"module '{target}' is called at several places"
                if isinstance(m, nn.MultiheadAttention):
                    return b.zero(m.out_proj.weight, m.out_proj.bias)
                weight = getattr(m, "weight", None)
                if not isinstance(weight, nn.Parameter):
                    return f"norm '{target}' ({type(m).__name__}) has no affine parameters"
                return b.zero(weight, getattr(m, "bias", None))
            if isinstance(m, ops.DEPTH_MODULES):
                return f"'{target}' ({type(m).__name__}) is a recurrent layer; zeroing it is not supported"
            if rec.kind == "nonlinearity":
                if _phi_at_zero(_module_phi(m)) != 0.0:
                    return f"'{target}' ({type(m).__name__}) does not map 0 to 0"
            elif not isinstance(m, _ZERO_KEEPING_MODULES) or isinstance(m, (nn.AlphaDropout, nn.FeatureAlphaDropout)):
                return f"'{target}' ({type(m).__name__}) is not known to keep zero at zero"
        elif rec.kind in ("layer", "norm"):
            return _zero_functional(sg, node, rec, b)
        elif rec.kind == "nonlinearity":
            if _phi_at_zero(_node_phi(node, sg.gm)) != 0.0:
                return f"'{rec.name}' ({rec.op}) does not map 0 to 0"
        elif _is_call(node, _MUL_FUNCTIONS, _MUL_METHODS) or _is_call(node, _DIV_FUNCTIONS, _DIV_METHODS):
            others = [a for a in node.args if not (isinstance(a, fx.Node) and a.name in reachable)]
            if not live or len(others) != 1:
                return f"'{rec.name}' ({rec.op}) is not a scaling by one factor"
            factor = others[0]
            if isinstance(factor, (int, float)):
                pass  # scaling by a Python number keeps zero at zero
            elif _is_call(node, _MUL_FUNCTIONS, _MUL_METHODS) and isinstance(factor, fx.Node):
                param = _param_at(sg, factor)
                if param is None:
                    return f"'{rec.name}' multiplies by something that is not a parameter"
                return b.zero(param)
            else:
                return f"'{rec.name}' ({rec.op}) divides by something that is not a number"
        elif not _is_call(node, _ZERO_KEEPING_FUNCTIONS, _ZERO_KEEPING_METHODS):
            return f"'{rec.name}' ({rec.op}) is not known to keep zero at zero"
        if not live:
            return "no affine layer (norm, layer or scale parameter) on the branch"
        node = live[0]


def _is_call(node: fx.Node, functions: set, methods: set) -> bool:
    if node.op == "call_function":
        return node.target in functions
    return node.op == "call_method" and node.target in methods


# Where a functional layer or norm takes its weight and bias: (weight position, bias position or None).
_FUNCTIONAL_AFFINE: dict[object, tuple[int, int | None]] = {
    F.linear: (1, 2), F.conv1d: (1, 2), F.conv2d: (1, 2), F.conv3d: (1, 2),
    F.conv_transpose1d: (1, 2), F.conv_transpose2d: (1, 2), F.conv_transpose3d: (1, 2),
    F.layer_norm: (2, 3), F.group_norm: (2, 3), F.batch_norm: (3, 4), F.instance_norm: (3, 4),
}
if hasattr(F, "rms_norm"):
    _FUNCTIONAL_AFFINE[F.rms_norm] = (2, None)


def _argument(node: fx.Node, position: int, name: str):
    return node.args[position] if position < len(node.args) else node.kwargs.get(name)


def _zero_functional(sg, node: fx.Node, rec, b: _Zeroer) -> str | None:
    """A functional layer or norm at the end of a branch: zero its weight (and bias) parameters."""
    if node.op == "call_function" and node.target in _FUNCTIONAL_AFFINE:
        w_pos, b_pos = _FUNCTIONAL_AFFINE[node.target]
        weight = _argument(node, w_pos, "weight")
        bias = _argument(node, b_pos, "bias") if b_pos is not None else None
    elif rec.kind == "layer" and rec.weight_arg is not None:  # matmul with a parameter
        weight, bias = _argument(node, rec.weight_arg, "other"), None
    else:
        return f"cannot tell which argument of '{rec.name}' ({rec.op}) is its weight"
    params = []
    for what, arg in (("weight", weight), ("bias", bias)):
        if arg is None:
            continue
        param = _param_at(sg, arg) if isinstance(arg, fx.Node) else None
        if param is None:
            return f"'{rec.name}' ({rec.op}) has a {what} that is not a parameter"
        params.append(param)
    if not params:
        return f"'{rec.name}' ({rec.op}) has no weight parameter to zero"
    return b.zero(*params)
