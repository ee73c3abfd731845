"""Put a model into the paper's orthogonal initial state (paper notes section 6 and section 10).

Three changes (the registry is ``gradlint.changes``), each an in-place function that returns the
model, and through ``apply(model, change)`` / ``plan(model, change)`` that say what was (or would be)
changed; one module per change plans it:

- ``orthogonal_`` ("orthogonal", ``orthogonal.py``): every depth-bearing module gets a
  (semi-)orthogonal weight times the gain that keeps the pre-activation scale of the nonlinearity
  it feeds; convolutions get the delta-orthogonal kernel of Xiao et al. 2018; biases are zeroed.
- ``looks_linear_`` ("looks-linear", ``looks_linear.py``): the mirrored construction of Balduzzi et
  al. 2017 for ReLU MLPs, so the whole network is exactly an orthogonal (or projecting) linear map.
- ``zero_init_residual_`` ("zero-residual", ``zero_residual.py``): the last affine of every residual
  branch is zeroed, so every residual block is exactly the identity at init.

Every function changes parameter values only: no module is replaced, no buffer is written, no
train/eval mode or ``requires_grad`` flag is touched.  Everything is checked before the first
parameter is written, so a refusal (``InitError``) leaves the model exactly as it was.  Random numbers
come from the ``generator`` argument (the global RNG when it is None), so a seeded generator gives
bit-identical parameters.  Planning reads the model's captured graph: pass ``graph`` (the probe's,
``gradlint.capture.Graph``) to plan without tracing again; without it the model is traced with torch.fx.
"""

from __future__ import annotations

import importlib

import torch
import torch.nn as nn

from .. import changes
from ..capture import Graph
from .common import InitChanges, InitError, Plan, nonlinearity_gain

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
    on the captured graph by walking forward through norms, views, dropout, pooling and other
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

    Supported (checked on the captured graph): one input -> [flatten/view/reshape/Identity/Dropout]
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
    functional linear layers, models that cannot be captured, and models without a Linear layer.
    Returns ``model``.
    """
    apply(model, "looks-linear", generator=generator)
    return model


def zero_init_residual_(model: nn.Module) -> nn.Module:
    """Zero the last affine of every residual branch, so every residual block is the identity at init.

    For each residual merge of the captured graph (an add whose operands pass through different
    numbers of depth-bearing layers), each branch operand is followed backwards through single-input
    ops that keep 0 at 0 (views, dropout, pooling, activations with phi(0) = 0 such as ReLU, GELU,
    tanh, and scaling by a Python number) to its last affine, which is zeroed:

    - a norm module with affine parameters (BatchNorm, LayerNorm, GroupNorm, RMSNorm): weight and
      bias (torchvision's ``zero_init_residual=True`` zeroes the last BN weight of each block);
    - a Linear, Bilinear, Conv or ConvTranspose module: weight and bias; MultiheadAttention: its
      ``out_proj`` weight and bias; functional layers and norms whose weight is a parameter;
    - a multiplication by a parameter (layer scale): that parameter.

    A branch with no such affine, or whose walk meets a multi-input op, a value that also feeds
    other ops, or a module used at several places, is left alone and listed in ``plan(...)
    .skipped``.  The skip path (identity or projection) is never touched.  Raises ``InitError`` when
    the model has no residual merge or cannot be captured.  Returns ``model``.
    """
    apply(model, "zero-residual")
    return model


def plan(model: nn.Module, change: str, *, graph: Graph | None = None) -> InitChanges:
    """What ``apply(model, change)`` would change, without changing anything (raises as it would)."""
    return _plan(model, change, graph).changes


def applicable(model: nn.Module, graph: Graph | None = None) -> tuple[str, ...]:
    """The changes whose plan changes something in ``model`` (on ``graph``, the probe's: nothing is traced
    again), in the order of ``gradlint.changes.CHANGES``."""
    fits = []
    for change in changes.CHANGES:
        try:
            if plan(model, change, graph=graph).changed:
                fits.append(change)
        except Exception:  # noqa: BLE001 - InitError, or a model the planner cannot trace
            continue
    return tuple(fits)


def apply(model: nn.Module, change: str, *, generator: torch.Generator | None = None,
          graph: Graph | None = None) -> InitChanges:
    """Apply one change ("orthogonal", "looks-linear" or "zero-residual") in place; say what changed."""
    p = _plan(model, change, graph)
    with torch.no_grad():
        for param, make in p.actions:
            param.copy_(make(generator))
    return p.changes


def _plan(model: nn.Module, change: str, graph: Graph | None) -> Plan:
    if not isinstance(model, nn.Module):
        raise InitError(f"expected an nn.Module, got {type(model).__name__}")
    known = changes.CHANGES.get(change)
    if known is None:
        raise InitError(f"unknown initialisation {change!r}; choose one of {', '.join(CHANGES)}")
    planner = importlib.import_module(f"{__name__}.{known.planner}")
    return planner.plan(model, graph)
