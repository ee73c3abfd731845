"""``looks_linear_``: the mirrored construction of Balduzzi et al. 2017 for ReLU MLPs, so the whole
network is exactly an orthogonal (or projecting) linear map at init."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import ops
from ..capture import OUTPUT, Graph
from .common import Builder, InitError, Plan, constant, graph_of, label, param, semi_orthogonal, value_users

_NEEDS = ("looks-linear needs Linear layers separated by ReLU/LeakyReLU/PReLU (optionally "
          "BatchNorm1d/LayerNorm), with even hidden widths")
_NORMS = (nn.BatchNorm1d, nn.LayerNorm) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


@dataclass
class _Act:
    label: str
    slope: torch.Tensor | float        # negative slope per unit (a tensor for PReLU) or a number


def _refuse(message: str) -> InitError:
    return InitError(f"looks_linear_: {message}; {_NEEDS}")


def plan(model: nn.Module, graph: Graph | None = None) -> Plan:
    name = type(model).__name__
    for mname, m in model.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            raise InitError(f"looks_linear_: layer '{mname}' ({type(m).__name__}) is a convolution; looks-linear "
                            "is for MLPs: use orthogonal_ for convolutional nets")
    g = graph_of(model, graph, "looks_linear_", _NEEDS)
    if g.structure.merges:
        merge = g.nodes[g.structure.merges[0].id]
        raise _refuse(f"'{merge.name}' ({merge.op}) is a residual merge in {name}, and residual nets are not "
                      "supported (use zero_init_residual_ for them)")
    inputs = [n.id for n in g.nodes.values() if n.kind == ops.INPUT and value_users(g, n.id)]
    if len(inputs) != 1:
        raise _refuse(f"{name} takes {len(inputs)} inputs, not one")
    linears, norms, acts = _chain(model, g, inputs[0], name)
    return _build(model, linears, norms, _slopes(linears, acts, name))


def _chain(model: nn.Module, g: Graph, node: str, name: str) -> tuple[list[tuple[str, nn.Linear]], list, list]:
    """The plain chain from the input: its Linear layers, their norms and the nonlinearity after each; or
    the reason the model is no such chain."""
    linears: list[tuple[str, nn.Linear]] = []
    norms: list[nn.Module] = []
    acts: list[_Act] = []               # acts[i] follows linears[i]
    state = "start"                     # start | linear | norm | act
    while True:
        users = value_users(g, node)
        if len(users) != 1:
            what = "is not used" if not users else f"feeds {len(users)} ops ({', '.join(users)})"
            raise _refuse(f"{label(g, node)} {what}: the model is not a plain chain")
        node = users[0]
        if node == OUTPUT:
            if state != "linear":
                ending = "does not end with a Linear layer" if linears else "has no Linear layer"
                raise _refuse(f"{name} {ending}")
            break
        kind, detail = _classify(model, g, node)
        where = label(g, node)
        if kind == "linear":
            if state not in ("start", "act"):
                raise _refuse(f"layer {where} follows another Linear without a ReLU-family nonlinearity in between")
            linears.append((g.nodes[node].module, detail))
            state = "linear"
        elif kind == "norm":
            if state != "linear":
                raise _refuse(f"{where} is not directly after a Linear layer")
            width = linears[-1][1].out_features
            if not _norm_fits(detail, width):
                raise _refuse(f"{where} does not normalise the {width} features of the Linear before it")
            norms.append(detail)
            state = "norm"
        elif kind == "act":
            if state not in ("linear", "norm"):
                raise _refuse(f"{where} does not follow a Linear layer")
            acts.append(_Act(where, detail))
            state = "act"
        elif kind == "dropout":
            if state not in ("start", "act"):
                raise _refuse(f"{where} is only supported on the input or right after a nonlinearity")
        elif kind == "view":
            if state != "start":
                raise _refuse(f"{where} reshapes between layers; only the input may be flattened")
        elif kind != "identity":
            raise _refuse(detail.format(label=where))
    return linears, norms, acts


def _slopes(linears: list[tuple[str, nn.Linear]], acts: list, name: str) -> list[torch.Tensor]:
    """Each hidden layer's negative slopes, after checking that its units can be mirrored in pairs."""
    module_ids = [id(m) for _, m in linears]
    for lname, m in linears:
        if module_ids.count(id(m)) > 1:
            raise _refuse(f"layer '{lname}' (Linear) is used more than once")
    if len(linears) < 2:
        raise _refuse(f"{name} has a single Linear layer and no nonlinearity to mirror")
    for lname, m in linears[:-1]:
        if m.out_features % 2:
            raise _refuse(f"layer '{lname}' (Linear {m.in_features}->{m.out_features}) has odd width "
                          f"{m.out_features} (units are mirrored in pairs)")
    slopes: list[torch.Tensor] = []
    for (lname, m), act in zip(linears[:-1], acts):
        h = m.out_features // 2
        a = _slope_vector(act, h, m.out_features)
        if bool((1.0 + a).abs().lt(1e-6).any()):
            raise _refuse(f"{act.label} has negative slope -1, so phi(u) - phi(-u) = 0")
        slopes.append(a)
    return slopes


def _build(model: nn.Module, linears: list[tuple[str, nn.Linear]], norms: list, slopes: list[torch.Tensor]) -> Plan:
    b = Builder(model)
    first = linears[0][1]
    h0 = first.out_features // 2
    b.set(first.weight, lambda gen, h=h0, d=first.in_features: _mirror_rows(semi_orthogonal(h, d, gen)))
    b.zero(first.bias)
    for (_, m), a in zip(linears[1:], slopes):
        h_in = m.in_features // 2
        if m is linears[-1][1]:
            b.set(m.weight, lambda gen, m=m, a=a, h=h_in: _mirror_cols(semi_orthogonal(m.out_features, h, gen) / (1 + a)))
        else:
            b.set(m.weight, lambda gen, m=m, a=a, h=h_in: _mirror_both(
                semi_orthogonal(m.out_features // 2, h, gen) / (1 + a)))
        b.zero(m.bias)
    for n in norms:
        if getattr(n, "weight", None) is not None:
            b.set(n.weight, constant(1.0))
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
            raise _refuse(f"{act.label} has {a.numel()} slopes for {width} units")
        if not torch.equal(a[:h], a[h:]):
            raise _refuse(f"{act.label} gives mirrored units i and i + {h} different slopes")
        return a[:h].clone()
    return torch.full((h,), float(a), dtype=torch.float64)


def _classify(model: nn.Module, g: Graph, node_id: str) -> tuple[str, object]:
    """(kind, detail) of one op on the chain; kind "refuse" carries a message with a {label} slot."""
    node = g.nodes[node_id]
    module = g.module(model, node_id)
    other = "{label} is not supported"
    if node.kind == ops.LAYER:
        if isinstance(module, nn.LazyLinear):
            return "refuse", "layer {label} is a lazy Linear not materialised yet"
        if isinstance(module, nn.Linear):
            return "linear", module
        if module is None:
            return "refuse", "{label} is a functional layer; looks-linear initialises nn.Linear modules only"
        return "refuse", "layer {label} is not a Linear layer"
    if node.kind == ops.NORM:
        if isinstance(module, _NORMS):
            return "norm", module
        return "refuse", "{label} is not a BatchNorm1d or LayerNorm over the last dim"
    if node.kind == ops.NONLINEARITY:
        layer = "layer {label}" if module is not None else "{label}"
        if node.family != ops.RELU:
            return "refuse", f"{layer} is not ReLU-family"
        if node.row in ("relu6", "rrelu"):
            return "refuse", f"{layer} is not a mirror-symmetric ReLU (phi(u) - phi(-u) is not proportional to u)"
        if isinstance(node.slope, str):
            return "act", param(model, node.slope)
        if node.slope is None:
            return "refuse", "{label} has a negative slope that is not a constant"
        return "act", float(node.slope)
    if node.kind == ops.DROPOUT:
        return "dropout", None
    if node.row == "identity":
        return "identity", None
    if node.kind in (ops.VIEW, ops.RESHAPE):
        return "view", None
    return "refuse", other
