"""Y, the output the GSC is relative to: which tensors of a model's output it is, and, when it is class or
token logits, their softmax at initialisation (``report.OutputStats``)."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from . import ops, stats
from .capture import Graph
from .errors import ProbeError
from .report import OutputStats


def y_of(result, observer, graph: Graph, selected: str | None = None, batch: int | None = None):
    """Y: every floating-point tensor of the output (tuples, lists, dicts, dataclasses, Hugging Face
    ModelOutputs, in order) that depends on the inputs, taken together, or the part ``selected`` names.
    A tensor the model's own softmax or log-softmax made is replaced by the logits it read: the GSC
    relative to log-probabilities measures the softmax's saturation, not the network.  Returns (||Y||,
    Y's tensors, the anchor node when Y is zero, what Y is as ``report.OutputStats``).  ``batch``: the
    probe batch's size, to tell whether Y is the same for every sample."""
    part = _select(result, selected) if selected else result
    values = [v for v in _flatten(part) if isinstance(v, torch.Tensor)]
    floats = [v for v in values if v.is_floating_point()]
    if not floats:
        kinds = ", ".join(sorted({str(v.dtype) for v in values})) or "no tensor"
        where = f"output {selected!r}" if selected else "model's output"
        raise ProbeError(f"the {where} is {kinds}, not a floating tensor; gradlint needs a "
                         "floating output (or a tuple, dict or dataclass holding one)")
    ys, before = [], None
    for y in floats:
        if not y.requires_grad:
            continue
        made = observer.softmaxed.get(id(y))
        if made is not None and made[2] is y and isinstance(made[0], torch.Tensor) and made[0].requires_grad:
            y, before = made[0], made[1]
        ys.append(y)
    output = _output_stats(ys, observer, graph, len(floats), selected, before)
    observer.softmaxed.clear()
    if output.logits and len(ys) > 1:
        # the loss reads the logits; a recurrent state or a key-value cache returned beside them is not Y
        ys, output = ys[:1], replace(output, logits_only=True)
    output = replace(output, same_for_every_sample=same_for_every_sample(ys, batch))
    y_norm = math.sqrt(sum(stats.frobenius(y) ** 2 for y in ys))
    if not ys or y_norm > 0:
        return y_norm, ys, None, output
    if observer.anchor is None:
        return 0.0, [], None, output
    anchor, value = observer.anchor
    return observer.measures[anchor].norm, [value], anchor, output


def _select(result, key: str):
    """The part of a model's output that ``key`` names: dict keys and attributes by name, sequence items
    by index, dotted for nested outputs (``0.logits``)."""
    value = result
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, (tuple, list)) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        elif not isinstance(value, (torch.Tensor, dict, tuple, list)) and hasattr(value, part):
            value = getattr(value, part)
        else:
            have = (", ".join(map(str, value.keys())) if isinstance(value, dict)
                    else f"indices 0-{len(value) - 1}" if isinstance(value, (tuple, list)) else type(value).__name__)
            raise ProbeError(f"the model's output has no {part!r} (--model-output {key}; it has {have})")
    return value


def same_for_every_sample(ys: list[torch.Tensor], batch: int | None) -> bool | None:
    """Whether every tensor of Y is the same for each sample of the batch (to float rounding: 1e-6 of its
    largest value): a model whose output does not depend on its input.  None when it cannot be told (a
    batch of one, or a tensor whose first dim is not the batch)."""
    if not ys or not batch or batch < 2 or any(y.dim() == 0 or y.shape[0] != batch for y in ys):
        return None
    with torch.no_grad():
        for y in ys:
            y = y.detach()
            scale = float(y.abs().max()) if y.numel() else 0.0
            if not math.isfinite(scale) or float((y - y[:1]).abs().max()) > 1e-6 * scale:
                return False
    return True


_LOGIT_ROWS = ("linear", "addmm", "matmul", "bilinear")


def _output_stats(ys: list[torch.Tensor], observer, graph: Graph, tensors: int, selected: str | None,
                  before: str | None) -> OutputStats:
    """What Y is; when its first tensor is class or token logits (read through the model's own softmax,
    or made by a linear head whose units are its last dim), their softmax at initialisation."""
    base = OutputStats(tensors=tensors, selected=selected, before_softmax=before)
    if not ys:
        return base
    y = ys[0]
    head = None
    for out in graph.outputs:
        node = graph.nodes[graph.past_no_ops(out, reshapes=True)]
        m = observer.measures.get(node.id)
        if node.kind == ops.LAYER and node.row in _LOGIT_ROWS and m is not None and m.width == y.shape[-1]:
            head = node.name
            break
    if head is None and before is None:
        return base
    found = stats.logits(y)
    if found is None:
        return base
    return replace(base, logits=True, classes=found.classes, entropy=found.entropy, init_loss=found.init_loss,
                   uniform_loss=math.log(found.classes), logit_std=found.logit_std,
                   saturated_fraction=found.saturated_fraction, head=head)


def _flatten(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flatten(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    if hasattr(value, "__dataclass_fields__"):
        return [x for v in vars(value).values() for x in _flatten(v)]
    return []
