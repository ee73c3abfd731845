"""Probe inputs: given by the model file, shaped by --input-shape, or inferred from the first layer."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .errors import InputError, one_line
from .state import preserved

DEFAULT_BATCH = 64
SEQUENCE_LENGTH = 32
SPATIAL_CANDIDATES = (32, 64, 224, 28, 16, 8, 128)
POSITIONS_BUDGET = 65536  # batch x spatial positions for image-sized inputs



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
