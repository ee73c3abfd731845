"""The gradient through time of a recurrent layer: how much of it reaches the first step of a sequence.

An RNN, LSTM or GRU layer counts as one depth-bearing layer per stacked layer, and its GSC is a sum over
positions, so how the gradient fades along the sequence is inside that sum and invisible there (a plain
tanh RNN that cannot carry the first token across 12 steps reads like an LSTM that can).  This module
measures it apart: the layer is run again on the input it received, a Gaussian cotangent u is put on its
output at the last step only, and the squared gradient reaching each input step, g_t (summed over the
batch and features), estimates ||d h_T / d x_t||_F^2 (E[||J^T u||^2] = ||J||_F^2).  The report gives

    time_reach = sqrt(g_0 / g_{T-1}),   time_rate = time_reach ** (1 / (T - 1)):

the gradient the first step receives against the last step's, and its decay per step.  The run starts
from a zero state (the layer's default): a model that passes its own initial state is measured without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

SEED = 3          # the cotangent's generator: the same draw every run (determinism)


@dataclass(frozen=True)
class Reach:
    steps: int            # T, the sequence length the layer saw
    reach: float          # sqrt(g_0 / g_{T-1})
    rate: float           # reach ** (1 / (T - 1)): the gradient's factor per step back in time


def measure(module: nn.Module, x: torch.Tensor) -> Reach | None:
    """The gradient through time of ``module`` (an ``nn.RNNBase``) on its input ``x`` (a padded tensor,
    (batch, time, features) when the layer is batch-first, else (time, batch, features)); None for
    anything else (packed sequences, an unbatched input, fewer than 2 steps, no gradient at the last step,
    a layer that fails to run again)."""
    if not isinstance(module, nn.RNNBase) or not isinstance(x, torch.Tensor) or x.dim() != 3:
        return None
    time_dim = 1 if module.batch_first else 0
    steps = x.shape[time_dim]
    if steps < 2 or not x.is_floating_point():
        return None
    try:
        with torch.enable_grad():
            xi = x.detach().requires_grad_(True)
            out = module.forward(xi)[0]        # not module(...): no hooks (the hooks tier records with them)
            last = out.select(time_dim, steps - 1)
            gen = torch.Generator().manual_seed(SEED)
            u = torch.randn(last.shape, generator=gen, dtype=torch.float64).to(device=last.device, dtype=last.dtype)
            (grad,) = torch.autograd.grad((last * u).sum(), xi)
    except Exception:  # noqa: BLE001 - a layer that cannot run again on its input is not measured apart (null)
        return None
    per_step = grad.double().pow(2).sum(dim=[d for d in range(3) if d != time_dim])
    first, final = float(per_step[0]), float(per_step[-1])
    if not (final > 0 and math.isfinite(first) and math.isfinite(final)):
        return None
    reach = math.sqrt(first / final)
    return Reach(steps, reach, reach ** (1.0 / (steps - 1)) if reach > 0 else 0.0)
