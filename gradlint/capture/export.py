"""The torch.export tier, for models torch.fx cannot trace (Hugging Face transformers, most models
with shape-dependent Python).  Non-strict export runs the real forward once with fake tensors and
records ATen ops; ``ExportedProgram.module()`` gives an fx graph in which parameters and buffers are
``get_attr`` nodes (they start no path), user inputs are placeholders, and every op carries its
module path in ``nn_module_stack``.  The graph shares the model's parameters and buffers.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import warnings

import torch.fx as fx
import torch.nn as nn

from .. import memory
from ..errors import one_line
from ..vocabulary import EXPORT
from . import composites
from .tiers import Tier

_NOISY_LOGGERS = ("torch._export", "torch.export", "torch.fx.experimental.symbolic_shapes", "torch._dynamo",
                  "torch._subclasses.fake_tensor")


def trace(model: nn.Module, args: tuple, kwargs: dict) -> fx.GraphModule:
    import torch.export  # a second of imports, paid only when torch.fx could not capture the model

    with _quiet(), _composite_forwards(model):
        program = torch.export.export(model, args, kwargs, strict=False)
        return program.module()


@contextlib.contextmanager
def _composite_forwards(model: nn.Module):
    """torch.nn's Transformer modules check their inputs' values on their fast paths (is the mask
    causal?), which export cannot guard on: the submodules get gradlint's slow-path forwards (their own
    training-mode computation, ``composites``) while the model is exported.  The root keeps its own."""
    patched = []
    for name, m in model.named_modules():
        if name and composites.traceable(m):
            patched.append(m)
            m.forward = functools.partial(composites.forward_of(m), m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward


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


class ExportTier(Tier):
    name = EXPORT

    def capture(self, model, inputs, facts, notes):
        from . import exported_graph

        return exported_graph(model, inputs.args, inputs.kwargs, facts)

    def arguments(self, model, inputs):
        return tuple(inputs.leaves())   # the exported graph's placeholders, in order

    def needs(self, graph):
        return memory.bytes_from_export(graph.fx_graph)

    def recapture(self, model, inputs, facts, graph):
        return self.capture(model, inputs, facts, [])

    def failed(self, exc, running):
        what = "the torch.export graph did not run" if running else "torch.export could not capture the model"
        return f"{what} ({one_line(exc)})"
