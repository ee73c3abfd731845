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


def run(model: nn.Module, args: tuple, kwargs: dict, inputs: list[tuple[str, torch.Tensor]], observer,
        note: str | None, input_facts=None) -> tuple[Graph, object]:
    """Run ``model(*args, **kwargs)`` recording leaf modules under ``observer`` (the protocol of
    ``capture.interpret``); ``inputs`` are the (name, tensor) inputs.  Returns the chain graph and the
    model's output."""
    nodes: dict[str, Node] = {}
    last: list[str] = []
    for name, x in inputs:
        nodes[name] = Node(id=name, name=name, op="input", kind=ops.INPUT)
        observer.observe(nodes[name], x, None, None, None)
        last.append(name)
    names = parameter_names(model)
    canon = canonical_names(model, names)
    measured_params: set[str] = set()
    calls: dict[str, int] = {}
    pending: dict[int, torch.Tensor] = {}

    def pre_hook(module, args):
        row = ops.of_module(module)
        if row is not None and row.kind == ops.NONLINEARITY and args and isinstance(args[0], torch.Tensor):
            x = args[0].detach()
            pending[id(module)] = x.clone() if ops.module_is_inplace(module) else x

    def post_hook(name):
        def hook(module, args, out):
            rest = None
            if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
                out, rest = out[0], out[1:]  # nn.MultiheadAttention: (output, weights); RNNs: (output, state)
            if not isinstance(out, torch.Tensor):
                return None
            n = calls.get(name, 0)
            calls[name] = n + 1
            node = describe(module, name, n, tuple(last))
            nodes[node.id] = node
            last[:] = [node.id]
            if node.kind != ops.OPAQUE:
                prefix = f"{name}." if name else ""
                measured_params.update(canon[prefix + p] for p, _ in module.named_parameters(remove_duplicate=False)
                                       if prefix + p in canon)
            observer.count(out)  # the hooks tier sees module outputs only
            observed = observer.observe(node, out, pending.pop(id(module), None), ops.module_weight(module), module)
            if observed is out:
                return None
            return observed if rest is None else (observed, *rest)
        return hook

    facts: dict[str, dict] = {}   # per module: what it is does not change from call to call

    def param_name(value) -> str | None:
        return names.get(id(value)) if isinstance(value, torch.Tensor) else None

    def describe(module: nn.Module, name: str, n: int, preds: tuple[str, ...]) -> Node:
        if name not in facts:
            facts[name] = module_facts(module, ops.of_module(module), name, model, param_name)
        return Node(id=f"{name}#{n}", name=name if n == 0 else f"{name}#{n}", op=type(module).__name__,
                    preds=preds, **facts[name])

    handles = []
    try:
        for name, m in leaf_modules(model):
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(post_hook(name)))
        mode = _NoDropout(observer)
        with mode:
            result = model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    outputs = tuple(last)
    read = {names[i] for i in mode.read if i in names}
    why = {name: ("used by functional code outside the recorded modules, which the hooks tier does not see (it "
                  "records module calls; a forward called directly, as in `self.module.forward(x)`, records "
                  "nothing)" if name in read else "never read by the forward on the probe inputs")
           for name in names.values() if name not in measured_params}
    graph = Graph(HOOKS, nodes, outputs, structure_of(nodes, outputs, input_facts), note=note,
                  measured_params=frozenset(measured_params), unmeasured_why=why, sees_structure=False)
    return graph, result
