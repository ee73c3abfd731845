"""The hooks tier, for models neither torch.fx nor torch.export can capture (data-dependent Python).

Forward hooks on the leaf modules (the op table's modules, and modules without children) record
each call in execution order, and the graph is taken to be a chain of them: residual structure is
not seen, and functional ops between modules (and parameters used outside a leaf) are not measured.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import ops
from ..vocabulary import HOOKS
from .base import Graph, Node, canonical_names, parameter_names, structure_of
from .classify import module_facts
from .tiers import Tier


class _NoDropout(torch.overrides.TorchFunctionMode):
    """Functional dropout (``F.dropout(x, p, self.training)``) returns its input during the probe, and
    attention's own dropout probability is 0.  ``softmaxed`` records the logits of every softmax and
    log-softmax by the id of its result, so an output of log-probabilities can be read as its logits."""

    def __init__(self, observer=None):
        super().__init__()
        self.observer = observer
        self.read: set[int] = set()   # ids of the parameters any torch function read

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for a in (*args, *kwargs.values()):
            for t in (a if isinstance(a, (list, tuple)) else (a,)):
                if isinstance(t, nn.Parameter):
                    self.read.add(id(t))
        name = getattr(func, "__name__", "")
        # x.log_softmax(...) arrives as the Tensor method: only the (log-)softmax rows are looked up by name
        row = ops.of_function(func) or (ops.of_method(name) if name in ops.SOFTMAX_ROWS else None)
        if row is not None and row.kind == ops.DROPOUT:
            return args[0] if args else kwargs["input"]
        if row is not None and row.dropout_arg is not None:
            args, kwargs = ops.without_dropout(row, tuple(args), kwargs)
        out = func(*args, **kwargs)
        if self.observer is not None and row is not None and row.name in ops.SOFTMAX_ROWS and args:
            self.observer.softmax(row.name, args[0], out)
        return out


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    leaves: list[tuple[str, nn.Module]] = []
    under: list[str] = []
    for name, m in model.named_modules():
        if not name or any(name.startswith(s + ".") for s in under):
            continue
        children = next(m.children(), None) is not None
        if ops.of_module(m) is not None or not children:
            leaves.append((name, m))
            if children:
                under.append(name)
    return leaves


class _Recorder:
    """The chain of leaf-module calls one forward makes, each module's output handed to the observer."""

    def __init__(self, model: nn.Module, observer):
        self.model, self.observer = model, observer
        self.nodes: dict[str, Node] = {}
        self.last: list[str] = []
        self.names = parameter_names(model)
        self.canon = canonical_names(model, self.names)
        self.measured_params: set[str] = set()
        self.calls: dict[str, int] = {}
        self.pending: dict[int, torch.Tensor] = {}   # a nonlinearity's input, read before it runs
        self.facts: dict[str, dict] = {}             # per module: what it is does not change from call to call

    def input(self, name: str, x: torch.Tensor) -> None:
        self.nodes[name] = Node(id=name, name=name, op="input", kind=ops.INPUT)
        self.observer.observe(self.nodes[name], x, None, None, None)
        self.last.append(name)

    def pre_hook(self, module, args):
        row = ops.of_module(module)
        if (row is not None and (row.kind == ops.NONLINEARITY or isinstance(module, nn.RNNBase)) and args
                and isinstance(args[0], torch.Tensor)):
            x = args[0].detach()
            self.pending[id(module)] = x.clone() if ops.module_is_inplace(module) else x

    def post_hook(self, name: str):
        def hook(module, args, out):
            rest = None
            if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
                out, rest = out[0], out[1:]  # nn.MultiheadAttention: (output, weights); RNNs: (output, state)
            if not isinstance(out, torch.Tensor):
                return None
            node = self._describe(module, name)
            if node.kind != ops.OPAQUE:
                prefix = f"{name}." if name else ""
                self.measured_params.update(self.canon[prefix + p] for p, _ in
                                            module.named_parameters(remove_duplicate=False) if prefix + p in self.canon)
            self.observer.count(out)  # the hooks tier sees module outputs only
            observed = self.observer.observe(node, out, self.pending.pop(id(module), None),
                                             ops.module_weight(module), module)
            if observed is out:
                return None
            return observed if rest is None else (observed, *rest)
        return hook

    def _describe(self, module: nn.Module, name: str) -> Node:
        """The node of this call of ``module``, after the last one."""
        n = self.calls.get(name, 0)
        self.calls[name] = n + 1
        if name not in self.facts:
            self.facts[name] = module_facts(module, ops.of_module(module), name, self.model, self._param_name)
        node = Node(id=f"{name}#{n}", name=name if n == 0 else f"{name}#{n}", op=type(module).__name__,
                    preds=tuple(self.last), **self.facts[name])
        self.nodes[node.id] = node
        self.last[:] = [node.id]
        return node

    def _param_name(self, value) -> str | None:
        return self.names.get(id(value)) if isinstance(value, torch.Tensor) else None

    def unmeasured_why(self, read: set[int]) -> dict[str, str]:
        """Why each parameter no recorded module holds went unmeasured (``read``: ids the forward read)."""
        read_names = {self.names[i] for i in read if i in self.names}
        return {name: ("used by functional code outside the recorded modules, which the hooks tier does not see "
                       "(it records module calls; a forward called directly, as in `self.module.forward(x)`, "
                       "records nothing)" if name in read_names else "never read by the forward on the probe inputs")
                for name in self.names.values() if name not in self.measured_params}


def run(model: nn.Module, args: tuple, kwargs: dict, inputs: list[tuple[str, torch.Tensor]], observer,
        note: str | None, input_facts=None) -> tuple[Graph, object]:
    """Run ``model(*args, **kwargs)`` recording leaf modules under ``observer`` (the protocol of
    ``capture.interpret``); ``inputs`` are the (name, tensor) inputs.  Returns the chain graph and the
    model's output."""
    rec = _Recorder(model, observer)
    for name, x in inputs:
        rec.input(name, x)
    handles = []
    try:
        for name, m in leaf_modules(model):
            handles.append(m.register_forward_pre_hook(rec.pre_hook))
            handles.append(m.register_forward_hook(rec.post_hook(name)))
        mode = _NoDropout(observer)
        with mode:
            result = model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    outputs = tuple(rec.last)
    graph = Graph(HOOKS, rec.nodes, outputs, structure_of(rec.nodes, outputs, input_facts), note=note,
                  measured_params=frozenset(rec.measured_params), unmeasured_why=rec.unmeasured_why(mode.read),
                  sees_structure=False)
    return graph, result


class HooksTier(Tier):
    name = HOOKS
    runs_a_graph = False
    sees_structure = False

    def capture(self, model, inputs, facts, notes):
        return None   # recorded while the model runs

    def run(self, model, graph, inputs, facts, observer, note):
        return run(model, inputs.args, inputs.kwargs, inputs.named_tensors(model), observer, note, facts)
