"""Leave the model exactly as it was: modes, requires_grad, buffers, hooks and RNG state."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import torch
import torch.nn as nn


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Restore train/eval flags, requires_grad, buffer values and every RNG stream on exit."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    py_state = random.getstate()
    np_state = _numpy_state()
    devices = sorted({b.device.index for b in buffers_and_params(model) if b.device.type == "cuda" and b.device.index is not None})
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)
            for p, flag in flags:
                p.requires_grad_(flag)
            for m, mode in modes:
                m.training = mode
            random.setstate(py_state)
            _restore_numpy(np_state)


def buffers_and_params(model: nn.Module) -> Iterator[torch.Tensor]:
    yield from model.parameters()
    yield from model.buffers()


def _numpy_state():
    try:
        import numpy
    except ImportError:  # numpy is optional for torch
        return None
    return numpy.random.get_state()


def _restore_numpy(state) -> None:
    if state is not None:
        import numpy

        numpy.random.set_state(state)
