"""The torch.export tier, for models torch.fx cannot trace (Hugging Face transformers, most models
with shape-dependent Python).  Non-strict export runs the real forward once with fake tensors and
records ATen ops; ``ExportedProgram.module()`` gives an fx graph in which parameters and buffers are
``get_attr`` nodes (they start no path), user inputs are placeholders, and every op carries its
module path in ``nn_module_stack``.  The graph shares the model's parameters and buffers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import torch
import torch.fx as fx
import torch.nn as nn

_NOISY_LOGGERS = ("torch._export", "torch.export", "torch.fx.experimental.symbolic_shapes", "torch._dynamo",
                  "torch._subclasses.fake_tensor")


def trace(model: nn.Module, args: tuple, kwargs: dict) -> fx.GraphModule:
    import torch.export  # a second of imports, paid only when torch.fx could not capture the model

    with _quiet():
        program = torch.export.export(model, args, kwargs, strict=False)
        return program.module()


@contextlib.contextmanager
def _quiet():
    """Export warns about every specialisation it makes, logs its failures and prints the partial graph
    of a failed export to stderr; the failure reaches the user as one line (GL001), the rest is noise."""
    loggers = [logging.getLogger(n) for n in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
