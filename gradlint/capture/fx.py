"""The torch.fx tier: symbolic tracing through every module that is not a primitive layer.

Leaves are the modules the op table knows (Linear, ConvNd, norms, Embedding, activations, RNNs) and
other torch.nn modules without a traceable forward of gradlint's (``composites``).  A custom
``autograd.Function`` stays one opaque op, so its own backward runs and its weights count as
unmeasured.  No per-node stack traces are recorded: construction sites come from ``sites``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import torch
import torch.fx as fx
import torch.nn as nn
from torch.nn.utils import parametrize

from .. import ops
from ..errors import one_line
from ..inputs import ProbeInputs
from ..vocabulary import FX
from . import composites
from . import export as export_tier
from .base import Graph, InputFacts
from .tiers import Tier


class Tracer(fx.Tracer):
    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = False

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if composites.traceable(m):
            return False
        if ops.of_module(m) is not None:
            return True
        if parametrize.is_parametrized(m):
            # torch.nn.utils.parametrize makes a class in torch's namespace, which torch.fx would keep whole:
            # a user's module with a parametrized weight is traced into, and its weight is the
            # parametrization's output (one call of the ParametrizationList, a leaf).
            return False
        return super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward, args, kwargs):
        if composites.traceable(m):
            forward = functools.partial(composites.forward_of(m), m)
        return super().call_module(m, forward, args, kwargs)

    def trace(self, root, concrete_args=None):
        with _opaque_autograd_functions(self):
            return super().trace(root, concrete_args)


def trace(model: nn.Module, concrete_args: dict | None = None) -> fx.Graph:
    """The graph of ``model``, whose targets are the model's own attributes (no GraphModule is compiled:
    the probe interprets the graph).  ``concrete_args``: forward parameters the probe does not pass,
    fixed at their defaults, so the traced graph takes the branches the real call takes."""
    tracer = Tracer()
    with warnings.catch_warnings(), _composite_root(model):
        warnings.simplefilter("ignore")  # a fixed argument torch.fx cannot guard is still fixed
        return tracer.trace(model, concrete_args or None)


@contextlib.contextmanager
def _composite_root(model: nn.Module):
    """torch.fx traces the root's class ``forward``: a composite root (a bare ``nn.Transformer``) gets
    its traceable forward through a subclass for the duration of the trace."""
    if not composites.traceable(model):
        yield
        return
    cls = type(model)
    model.__class__ = type(cls.__name__, (cls,), {"forward": composites.forward_of(model)})
    try:
        yield
    finally:
        model.__class__ = cls


_opaque: dict[type, object] = {}


def _opaque_call(cls: type):
    """One graph op per autograd.Function class, calling the real ``apply`` (its own backward)."""
    fn = _opaque.get(cls)
    if fn is None:
        def fn(*args, **kwargs):
            return cls.apply(*args, **kwargs)

        fn.__name__ = f"{cls.__name__}.apply"
        fn.__qualname__ = fn.__name__
        fn._gradlint_opaque = True
        fn._gradlint_class = cls   # the report cache keys the graph by the class's code
        _opaque[cls] = fn
    return fn


@contextlib.contextmanager
def _opaque_autograd_functions(tracer: fx.Tracer):
    """While tracing, ``SomeFunction.apply(proxy, ...)`` records one op instead of tracing its forward."""
    saved = torch.autograd.Function.__dict__["apply"]   # a classmethod, or a C descriptor in newer torch

    def apply(cls, *args, **kwargs):
        proxies = []
        fx.node.map_aggregate((args, kwargs), lambda a: proxies.append(a) if isinstance(a, fx.Proxy) else None)
        if not proxies:
            return saved.__get__(None, cls)(*args, **kwargs)
        return tracer.create_proxy("call_function", _opaque_call(cls), args, kwargs)

    torch.autograd.Function.apply = classmethod(apply)
    try:
        yield
    finally:
        torch.autograd.Function.apply = saved


class FxTier(Tier):
    name = FX

    def capture(self, model, inputs, facts, notes):
        from . import static_graph

        graph = static_graph(model, inputs.positional(model)[1], facts)
        return see_inside_wrapped_functions(graph, model, inputs, facts, notes)

    def arguments(self, model, inputs):
        return inputs.positional(model)[0]

    def failed(self, exc, running):
        return f"{'the torch.fx graph did not run' if running else 'torch.fx could not trace the model'} ({one_line(exc)})"


def see_inside_wrapped_functions(graph: Graph, model: nn.Module, inputs: ProbeInputs, facts: InputFacts,
                                 notes: list[str]) -> Graph:
    """torch.fx keeps a function registered with ``torch.fx.wrap`` as one opaque op (torchvision's Swin
    attention is one); when such an op reads parameters, torch.export, which traces into it, sees more.
    Custom autograd.Functions stay opaque on purpose (their own backward must run) and do not count."""
    wrapped = sorted({n.op for n in graph.nodes.values() if n.kind == ops.OPAQUE and n.module is None
                      and any(p in graph.nodes and graph.nodes[p].kind == ops.CONSTANT for p in n.preds)
                      and not n.op.endswith(".apply")})
    if not wrapped:
        return graph
    try:
        exported = export_tier.ExportTier().capture(model, inputs, facts, notes)
    except Exception:  # noqa: BLE001 - keep what torch.fx saw
        return graph
    if len(exported.measured_params) <= len(graph.measured_params):
        return graph
    notes.append(f"torch.fx keeps {', '.join(wrapped)} (torch.fx.wrap) as opaque ops that read parameters")
    return exported
