"""Probe inputs: given by the model file, shaped by --input-shape, or inferred from the first layer."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.utils._pytree as pytree

from .errors import InputError, one_line
from .state import preserved

DEFAULT_BATCH = 64
SEQUENCE_LENGTH = 32
SPATIAL_CANDIDATES = (32, 64, 224, 28, 16, 8, 128)
POSITIONS_BUDGET = 65536  # batch x spatial positions for image-sized inputs


@dataclass(frozen=True)
class ProbeInputs:
    """What the model is called with: ``model(*args, **kwargs)``."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    @classmethod
    def of(cls, value) -> "ProbeInputs":
        """A tensor (one positional input), a tuple or list (positional inputs) or a dict (keyword inputs)."""
        if isinstance(value, ProbeInputs):
            return value
        if isinstance(value, dict):
            return cls((), dict(value))
        if isinstance(value, (tuple, list)):
            return cls(tuple(value))
        return cls((value,))

    def leaves(self) -> list:
        """Every value inside the inputs, flattened (nested tuples, lists and dicts), in order."""
        return pytree.tree_leaves((self.args, self.kwargs))

    def tensors(self) -> list[torch.Tensor]:
        return [x for x in self.leaves() if isinstance(x, torch.Tensor)]

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "ProbeInputs":
        """The same inputs with ``fn`` applied to every tensor."""
        args, kwargs = pytree.tree_map(lambda x: fn(x) if isinstance(x, torch.Tensor) else x,
                                       (self.args, self.kwargs))
        return ProbeInputs(tuple(args), dict(kwargs))

    def named_tensors(self, model: nn.Module) -> list[tuple[str, torch.Tensor]]:
        """(name, tensor) for each input tensor: the forward parameter it binds to (``x``,
        ``input_ids``), with an index inside nested structures."""
        try:
            bound = inspect.signature(model.forward).bind(*self.args, **self.kwargs).arguments
        except (TypeError, ValueError):
            bound = {f"input_{i}": a for i, a in enumerate(self.args)} | self.kwargs
        named: list[tuple[str, torch.Tensor]] = []
        for name, value in bound.items():
            leaves = [x for x in pytree.tree_leaves(value) if isinstance(x, torch.Tensor)]
            named += [(name if len(leaves) == 1 else f"{name}_{i}", t) for i, t in enumerate(leaves)]
        return named

    def positional(self, model: nn.Module) -> tuple[tuple, dict]:
        """Every forward parameter up to the last one given, positionally (defaults filled in), and the
        parameters not given with their defaults (torch.fx fixes those when tracing)."""
        try:
            sig = inspect.signature(model.forward)
            bound = sig.bind(*self.args, **self.kwargs)
        except (TypeError, ValueError):
            return self.args, {}
        params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(params) != len(sig.parameters):
            return self.args, {}  # *args or **kwargs or keyword-only parameters: pass as given
        given = bound.arguments
        values = tuple(given[p.name] if p.name in given else p.default for p in params)
        fixed = {p.name: p.default for p in params if p.name not in given}
        return values, fixed



def default_batch(sample_shape: tuple[int, ...]) -> int:
    """64 for vectors and tokens; fewer for image-sized inputs, whose statistics pool over positions."""
    positions = math.prod(sample_shape[1:]) if len(sample_shape) >= 2 else 1
    if positions <= POSITIONS_BUDGET // DEFAULT_BATCH:
        return DEFAULT_BATCH
    return max(8, 2 ** int(math.log2(max(1, POSITIONS_BUDGET // positions))))


def gaussian(shape: tuple[int, ...], gen: torch.Generator, device, dtype) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=dtype).to(device)


def tokens(shape: tuple[int, ...], vocab: int, gen: torch.Generator, device) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=gen).to(device)


def first_layer(model: nn.Module) -> nn.Module | None:
    """The first module (in definition order) that fixes the input's feature size."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.Embedding, nn.EmbeddingBag,
                          nn.RNNBase, nn.MultiheadAttention)):
            return m
    return None


def _where(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(iter(model.parameters()), None)
    if p is None:
        return torch.device("cpu"), torch.float32
    dtype = next((q.dtype for q in model.parameters() if q.is_floating_point()), torch.float32)
    return p.device, dtype


def from_shape(model: nn.Module, shape: tuple[int, ...], batch: int | None, seed: int) -> tuple[torch.Tensor, ...]:
    """``--input-shape``: Gaussian of (batch, *shape), or token ids when the model starts with an Embedding."""
    device, dtype = _where(model)
    gen = torch.Generator().manual_seed(seed)
    b = batch or default_batch((1, *shape))
    first = first_layer(model)
    if isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        return (tokens((b, *shape), first.num_embeddings, gen, device),)
    return (gaussian((b, *shape), gen, device, dtype),)


def infer(model: nn.Module, batch: int | None, seed: int) -> tuple[torch.Tensor, ...]:
    """Inputs inferred from the first depth-bearing layer, checked by a trial forward pass."""
    first = first_layer(model)
    if first is None:
        raise InputError("cannot infer an input shape (no Linear, Conv or Embedding layer); "
                         "pass --input-shape or define example_inputs()")
    device, dtype = _where(model)
    if isinstance(first, nn.Linear):
        if isinstance(first, nn.modules.lazy.LazyModuleMixin) and first.has_uninitialized_params():
            raise InputError("the first layer is lazy (in_features unknown); pass --input-shape or define example_inputs()")
        candidates = [(first.in_features,)]
    elif isinstance(first, nn.Bilinear):
        candidates = [((first.in1_features,), (first.in2_features,))]
    elif isinstance(first, nn.modules.conv._ConvNd):
        nd = len(first.kernel_size)
        channels = first.in_channels
        candidates = [(channels, *([s] * nd)) for s in SPATIAL_CANDIDATES]
    elif isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        gen = torch.Generator().manual_seed(seed)
        shape = (batch or DEFAULT_BATCH, SEQUENCE_LENGTH)
        inputs = (tokens(shape, first.num_embeddings, gen, device),)
        _try(model, inputs, f"token ids of shape {list(shape)}")
        return inputs
    elif isinstance(first, nn.RNNBase):
        candidates = [(SEQUENCE_LENGTH, first.input_size)]
    else:  # MultiheadAttention
        candidates = [(SEQUENCE_LENGTH, first.embed_dim)]
    errors = []
    for cand in candidates:
        shapes = cand if isinstance(cand[0], tuple) else (cand,)
        trial_gen = torch.Generator().manual_seed(seed)  # never the global RNG: lint leaves it as it was
        trial = tuple(gaussian((2, *s), trial_gen, device, dtype) for s in shapes)
        try:
            _try(model, trial, "")
        except InputError as exc:
            errors.append((shapes, exc))
            continue
        b = batch or default_batch((1, *shapes[0]))
        gen = torch.Generator().manual_seed(seed)
        return tuple(gaussian((b, *s), gen, device, dtype) for s in shapes)
    shapes, exc = errors[0]
    tried = ", ".join(str(list(s[0])) for s, _ in errors[:3])
    raise InputError(f"forward pass fails with the inferred input shape {tried}"
                     f"{' ...' if len(errors) > 3 else ''} ({exc}); pass --input-shape or define example_inputs()")


def _try(model: nn.Module, inputs: tuple, what: str) -> None:
    with preserved(model), torch.no_grad():
        model.eval()
        try:
            model(*inputs)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's forward is reported
            msg = one_line(exc)
            raise InputError(f"{msg}" if not what else f"forward pass fails with {what} ({msg}); "
                             "pass --input-shape or define example_inputs()") from exc
