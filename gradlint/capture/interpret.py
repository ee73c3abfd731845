"""Running a captured graph under an observer: every value a node makes is handed to the observer as it
passes, dropout is the identity, and in-place writes cannot corrupt what the observer keeps.

The observer protocol (``gradlint.probe.Observer`` implements it), all it is told about a graph:

- ``observe(node, out, x_in, weight, module)``: a node's value (``x_in``: a nonlinearity's or a layer's
  first input); returns the value to hand on;
- ``count(value)``: a value's bytes, for the memory budget (may raise ``memory.OverBudget``);
- ``operands(node, values)``: the values a merge or a shift reads, in the order of ``node.preds``;
- ``alias(key, out)``: one side of a split's start (``ALIAS_META``), for the branch shares;
- ``softmax(row, logits, out)``: a softmax or log-softmax and the logits it read;
- ``hold(name, out)``: the value of a start, an end or an operand of a split in ``graph.apart``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn as nn

from .. import ops
from .base import ALIAS_META, META, Graph, Node
from .classify import weight_argument


class Interpreter(fx.Interpreter):
    """Runs a captured graph, handing every value to the observer; dropout is the identity."""

    def __init__(self, graph: Graph, observer, aten: bool, model: nn.Module | None = None):
        super().__init__(graph.root, graph=graph.fx_graph)
        self.captured = graph
        self.observer = observer
        self.aten = aten
        self.model = model          # the user's model (an exported graph's module paths name its submodules)
        self.kept = {name for start, end, operands in graph.apart for name in (start, end, *operands)}

    def run_node(self, n: fx.Node):
        out = self._run(n)
        if n.name in self.kept:
            self.observer.hold(n.name, out)
        return out

    def _run(self, n: fx.Node):
        desc: Node | None = n.meta.get(META)
        key = n.meta.get(ALIAS_META)
        if key is not None:
            return self.observer.alias(key, super().run_node(n))
        if desc is None:
            return super().run_node(n)
        if desc.kind == ops.DROPOUT:
            return self._no_dropout(n)
        if desc.row is not None and n.op == "call_function" and ops.by_name(desc.row).dropout_arg is not None:
            args, kwargs = ops.without_dropout(ops.by_name(desc.row), *self.fetch_args_kwargs_from_env(n))
            return n.target(*args, **kwargs)
        if desc.row in ops.SOFTMAX_ROWS:
            out = super().run_node(n)
            logits = self.fetch_args_kwargs_from_env(n)[0]
            if logits and isinstance(out, torch.Tensor):
                self.observer.softmax(desc.row, logits[0], out)
            return out
        return self._measured(n, desc)

    def _measured(self, n: fx.Node, desc: Node):
        x_in = weight = None
        if desc.kind == ops.MERGE or desc.shift is not None:
            self.observer.operands(desc, _operand_values(n, self.fetch_args_kwargs_from_env(n)))
        if desc.kind in (ops.NONLINEARITY, ops.LAYER):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if first is not None:      # a nonlinearity's input (its domain), a recurrent layer's (its time axis)
                x_in = first.detach().clone() if desc.inplace else first.detach()
            if desc.kind == ops.LAYER and desc.weight_arg is not None:
                weight = weight_argument(_Bound(args, kwargs), desc.weight_arg)
        out = super().run_node(n)
        self.observer.count(out)
        module = self.module.get_submodule(str(n.target)) if n.op == "call_module" else None
        if desc.kind == ops.LAYER and module is not None:
            # Read after the call: a parametrization or a weight-norm hook makes the weight the forward used.
            weight = ops.module_weight(module)
        out = self.observer.observe(desc, out, x_in, weight, module or self._recurrent(desc))
        if n.name in self.captured.written and isinstance(out, torch.Tensor):
            out = out.clone()
        return out

    def _recurrent(self, desc: Node) -> nn.Module | None:
        """The RNN, LSTM or GRU module an ATen recurrent op (torch.export's graph) belongs to, so that its
        gradient through time is measured as under torch.fx."""
        if desc.kind != ops.LAYER or desc.module is None:
            return None
        try:
            module = (self.model or self.module).get_submodule(desc.module)
        except AttributeError:
            return None
        return module if isinstance(module, nn.RNNBase) else None

    def _no_dropout(self, n: fx.Node):
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        x = args[0] if args else kwargs.get("input")
        if self.aten and ops.aten_name(n.target) == "native_dropout":
            return x, torch.ones_like(x, dtype=torch.bool)
        return x


def _operand_values(fx_node: fx.Node, fetched: tuple[tuple, dict]) -> list:
    """The values of a node's argument nodes, once each, in the order they appear (a node's ``preds``),
    walking the arguments and their fetched values side by side."""
    found: dict[str, object] = {}

    def walk(arg, value):
        if isinstance(arg, fx.Node):
            found.setdefault(arg.name, value)
        elif isinstance(arg, (tuple, list)) and isinstance(value, (tuple, list)):
            for a, v in zip(arg, value):
                walk(a, v)
        elif isinstance(arg, dict) and isinstance(value, dict):
            for k in arg:
                walk(arg[k], value.get(k))

    walk((fx_node.args, fx_node.kwargs), fetched)
    return list(found.values())


@dataclass
class _Bound:
    """Fetched arguments, shaped like an fx node for ``weight_argument``."""

    args: tuple
    kwargs: dict
