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
    data_input: str | None = None       # the forward argument the data path starts from, when the file says
    model_output: str | None = None     # which output is Y, when the file says

    @classmethod
    def of(cls, value) -> "ProbeInputs":
        """A tensor (one positional input), a tuple or list (positional inputs) or a dict (keyword inputs)."""
        if isinstance(value, ProbeInputs):
            return value
        if isinstance(value, Inputs):
            return cls(value.args, dict(value.kwargs), value.data_input, value.model_output)
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
        return ProbeInputs(tuple(args), dict(kwargs), self.data_input, self.model_output)

    def first(self, n: int) -> "ProbeInputs":
        """The first ``n`` samples of every input whose dim 0 is the batch (the first input's dim 0); other
        inputs (a shared mask) as they are."""
        tensors = self.tensors()
        full = tensors[0].shape[0] if tensors and tensors[0].dim() else None
        return self.map(lambda x: x[:n] if full is not None and x.dim() and x.shape[0] == full else x)

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

    def facts(self, model: nn.Module, data: str | None = None):
        """What the capture needs to know before anything runs (``capture.InputFacts``): the inputs with
        one value per sample (timesteps, labels) or no numbers (boolean masks), which are never the data
        path, and the data input the user named (checked against the inputs)."""
        from .capture import InputFacts

        named = self.named_tensors(model)
        if data is not None and data not in {n for n, _ in named}:
            raise InputError(f"no input named {data!r} for the data path (inputs: {', '.join(n for n, _ in named)}); "
                             "name one of the forward's tensor arguments")
        batch = batch_size_of(model, [t for _, t in named])
        # never the data path: boolean masks, one value per sample (timesteps, labels), and tensors without
        # the batch among their dims (a causal mask shared by the batch)
        scalar = frozenset(n for n, t in named if t.dtype == torch.bool or t.dim() <= 1
                           or t.numel() <= t.shape[0] or batch not in t.shape)
        return InputFacts(scalar, data)

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



class Inputs:
    """What ``example_inputs()`` may return to say more than the tensors: ``gradlint.Inputs(x, t, y,
    data_input="x", model_output="logits")`` calls the model as ``model(x, t, y)``, starts the data path
    at ``x`` and measures the GSC relative to the output ``logits`` (a key, an index or a dotted path)."""

    def __init__(self, *args, data_input: str | None = None, model_output: str | None = None, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.data_input, self.model_output = data_input, model_output


def default_batch(sample_shape: tuple[int, ...], channels: bool = False) -> int:
    """64 for vectors and tokens; fewer for image-sized inputs, whose statistics pool over positions.
    ``sample_shape`` is (1, *shape); with ``channels`` its first dim is the channels, not positions."""
    dims = sample_shape[2:] if channels else sample_shape[1:]
    positions = math.prod(dims) if len(sample_shape) >= 2 else 1
    if positions <= POSITIONS_BUDGET // DEFAULT_BATCH:
        return DEFAULT_BATCH
    return max(8, 2 ** int(math.log2(max(1, POSITIONS_BUDGET // positions))))


def gaussian(shape: tuple[int, ...], gen: torch.Generator, device, dtype) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=dtype).to(device)


def tokens(shape: tuple[int, ...], vocab: int, gen: torch.Generator, device) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=gen).to(device)


_FIRST = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.Embedding, nn.EmbeddingBag, nn.RNNBase,
          nn.MultiheadAttention)
_SEQUENCE = (nn.RNNBase, nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def first_layer(model: nn.Module) -> nn.Module | None:
    """The first module (in definition order) that fixes the input's feature size."""
    return next((m for m in model.modules() if isinstance(m, _FIRST)), None)


def sequence_first(model: nn.Module) -> bool:
    """Whether the model's recurrent and attention layers all take (sequence, batch, ...) inputs
    (``batch_first=False``, torch's default): then its inputs are sequence-first too."""
    found = [m for m in model.modules() if isinstance(m, _SEQUENCE)]
    return bool(found) and not any(getattr(m, "batch_first", False) for m in found)


def batch_size_of(model: nn.Module, tensors: list[torch.Tensor]) -> int:
    """The batch of probe inputs: dim 0, or dim 1 of a sequence-first model's (sequence, batch) input."""
    first = next((t for t in tensors if t.dim()), None)
    if first is None:
        return 0
    if sequence_first(model) and first.dim() >= 2:
        return int(first.shape[1])
    return int(first.shape[0])


def _where(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(iter(model.parameters()), None)
    if p is None:
        return torch.device("cpu"), torch.float32
    dtype = next((q.dtype for q in model.parameters() if q.is_floating_point()), torch.float32)
    return p.device, dtype


def from_shape(model: nn.Module, shape: tuple[int, ...], batch: int | None, seed: int) -> tuple[torch.Tensor, ...]:
    """``--input-shape``: Gaussian of (batch, *shape), or token ids when the first op applied to the input
    is an embedding; a sequence-first model gets (shape[0], batch, *shape[1:])."""
    device, dtype = _where(model)
    gen = torch.Generator().manual_seed(seed)
    seq_first = sequence_first(model)
    b = batch or default_batch((1, *shape), channels=_convolutional(model))
    full = (shape[0], b, *shape[1:]) if seq_first and shape else (b, *shape)
    vocab = _token_vocab(model, full, device, seed)
    if vocab is not None:
        return (tokens(full, vocab, gen, device),)
    return (gaussian(full, gen, device, dtype),)


def _convolutional(model: nn.Module) -> bool:
    return isinstance(first_layer(model), nn.modules.conv._ConvNd)


class _FirstUse(torch.overrides.TorchFunctionMode):
    """Records the first torch function applied to a tensor (or to views of it), past shape queries."""

    _PASS = {"size", "dim", "numel", "__len__", "__get__", "shape", "ndim", "ndimension", "device", "dtype",
             "is_floating_point", "__format__", "__repr__", "__bool__"}

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self.tracked = {id(x)}
        self.keep = [x]
        self.first = None
        self.args: tuple = ()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.first is None:
            flat = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            if any(id(a) in self.tracked for a in flat):
                name = getattr(func, "__name__", "")
                if name in self._PASS:
                    return out
                from .ops import RESHAPE, VIEW, of_function, of_method

                row = of_function(func) or of_method(name)
                if row is not None and row.kind in (VIEW, RESHAPE) and isinstance(out, torch.Tensor):
                    self.tracked.add(id(out))
                    self.keep.append(out)
                else:
                    self.first, self.args = func, tuple(args)
        return out


def _token_vocab(model: nn.Module, shape: tuple[int, ...], device, seed: int) -> int | None:
    """When the first op applied to the input is an embedding lookup (``nn.Embedding``, ``F.embedding``,
    or indexing a parameter with it), the vocabulary of that embedding; None for a float input.  Decided
    by a trial forward on token ids at batch 2 (whatever it raises after the lookup does not matter)."""
    tables = [m for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    params = {id(p): p for p in model.parameters() if p.dim() == 2}
    if not tables and not params:
        return None
    smallest = min([m.num_embeddings for m in tables] + [int(p.shape[0]) for p in params.values()])
    trial_shape = tuple(min(2, d) if i == (1 if sequence_first(model) and len(shape) >= 2 else 0) else d
                        for i, d in enumerate(shape))
    x = torch.randint(0, max(1, smallest), trial_shape, generator=torch.Generator().manual_seed(seed)).to(device)
    use = _FirstUse(x)
    with preserved(model), torch.no_grad():
        model.eval()
        try:
            with use:
                model(x)
        except Exception:  # noqa: BLE001 - a trial: only which op read the input first matters
            pass
    name = getattr(use.first, "__name__", "")
    if name in ("embedding", "embedding_bag"):
        weight = next((a for a in use.args[1:] if isinstance(a, torch.Tensor)), None)
        return int(weight.shape[0]) if weight is not None else smallest
    if name == "__getitem__" and use.args and id(use.args[0]) in params:
        return int(use.args[0].shape[0])
    return None


def _config_image_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    """Input sizes a model declares: timm's ``pretrained_cfg["input_size"]`` (or ``default_cfg``), Hugging
    Face configs' ``num_channels`` and ``image_size``."""
    found: list[tuple[int, ...]] = []
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, attr, None)
        size = cfg.get("input_size") if isinstance(cfg, dict) else None
        if isinstance(size, (tuple, list)) and all(isinstance(d, int) and d > 0 for d in size):
            found.append(tuple(size))
    config = getattr(model, "config", None)
    image = getattr(config, "image_size", None)
    channels = getattr(config, "num_channels", None)
    if isinstance(image, int) and isinstance(channels, int):
        found.append((channels, image, image))
    elif isinstance(image, (tuple, list)) and len(image) == 2 and isinstance(channels, int):
        found.append((channels, *image))
    return list(dict.fromkeys(found))


def _sequence_lengths(model: nn.Module, first: nn.Module) -> list[int]:
    """Token lengths to try: the default, a context length the model declares (``block_size``,
    ``max_seq_len``...) when shorter, and for an embedding whose vectors are flattened into a Linear
    (a makemore MLP: ``emb.view(B, -1)``), that Linear's inputs over the embedding width."""
    lengths = [SEQUENCE_LENGTH]
    holders = [model, getattr(model, "config", None)]
    for holder in holders:
        for attr in ("block_size", "max_seq_len", "context_length", "seq_len", "max_len", "n_ctx",
                     "max_position_embeddings"):
            value = getattr(holder, attr, None)
            if isinstance(value, int) and 0 < value < SEQUENCE_LENGTH:
                lengths.append(value)
    width = getattr(first, "embedding_dim", None)
    for m in model.modules():
        if isinstance(m, nn.Linear) and width and m.in_features % width == 0 and m.in_features > width:
            lengths.append(m.in_features // width)
    return list(dict.fromkeys(lengths))


def infer(model: nn.Module, batch: int | None, seed: int) -> tuple[torch.Tensor, ...]:
    """Inputs inferred from the first depth-bearing layer, checked by a trial forward pass: token ids
    when the first op applied to the input is an embedding, a latent (C, 1, 1) first for a model that
    starts with a transposed convolution (a GAN generator), the input size a timm or Hugging Face model
    declares, images when a Linear-first model does not take vectors (a ViT's patch embedding)."""
    first = first_layer(model)
    if first is None:
        raise InputError("cannot infer an input shape (no Linear, Conv or Embedding layer); "
                         "pass --input-shape or define example_inputs()")
    device, dtype = _where(model)
    seq_first = sequence_first(model)
    declared = _config_image_shapes(model)
    lookup = _token_vocab(model, (SEQUENCE_LENGTH, 2) if seq_first else (2, SEQUENCE_LENGTH), device, seed)
    if lookup is not None or isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        ids = _token_inputs(model, first, lookup, batch, seed, seq_first, device)
        if ids is not None:
            return ids
    if isinstance(first, nn.Linear):
        if isinstance(first, nn.modules.lazy.LazyModuleMixin) and first.has_uninitialized_params():
            raise InputError("the first layer is lazy (in_features unknown); pass --input-shape or define example_inputs()")
        candidates = [(first.in_features,)] + declared + [(c, s, s) for c in (3, 1) for s in SPATIAL_CANDIDATES]
    elif isinstance(first, nn.Bilinear):
        candidates = [((first.in1_features,), (first.in2_features,))]
    elif isinstance(first, nn.modules.conv._ConvNd):
        nd = len(first.kernel_size)
        channels = first.in_channels
        sizes = ((1,) if isinstance(first, nn.modules.conv._ConvTransposeNd) else ()) + SPATIAL_CANDIDATES
        candidates = [s for s in declared if s[0] == channels and len(s) == nd + 1]
        candidates += [(channels, *([s] * nd)) for s in sizes]
    elif isinstance(first, nn.RNNBase):
        candidates = [(SEQUENCE_LENGTH, first.input_size)]
    else:  # MultiheadAttention
        candidates = [(SEQUENCE_LENGTH, first.embed_dim)]
    errors = []
    for cand in dict.fromkeys(candidates):
        shapes = cand if isinstance(cand[0], tuple) else (cand,)
        trial_gen = torch.Generator().manual_seed(seed)  # never the global RNG: lint leaves it as it was
        trial = tuple(gaussian(_batched(s, 2, seq_first), trial_gen, device, dtype) for s in shapes)
        try:
            _try(model, trial, "")
        except InputError as exc:
            errors.append((shapes, exc))
            continue
        b = batch or default_batch((1, *shapes[0]), channels=len(shapes[0]) >= 3)
        gen = torch.Generator().manual_seed(seed)
        return tuple(gaussian(_batched(s, b, seq_first), gen, device, dtype) for s in shapes)
    shapes, exc = errors[0]
    tried = ", ".join(str(list(s[0])) for s, _ in errors[:3])
    raise InputError(f"forward pass fails with the inferred input shape {tried}"
                     f"{' ...' if len(errors) > 3 else ''} ({exc}); pass --input-shape or define example_inputs()")


def _token_inputs(model: nn.Module, first: nn.Module, lookup: int | None, batch: int | None, seed: int,
                  seq_first: bool, device) -> tuple[torch.Tensor] | None:
    """Token ids of the first sequence length a trial forward accepts; None when there is no vocabulary to
    draw from; the first trial's error when no length works."""
    errors = []
    for length in _sequence_lengths(model, first):
        shape = (length, batch or DEFAULT_BATCH) if seq_first else (batch or DEFAULT_BATCH, length)
        vocab = lookup or getattr(first, "num_embeddings", None)
        if vocab is None:
            break
        gen = torch.Generator().manual_seed(seed)
        inputs = (tokens(shape, vocab, gen, device),)
        try:
            _try(model, inputs, f"token ids of shape {list(shape)}")
        except InputError as exc:
            errors.append(exc)
            continue
        return inputs
    if errors:
        raise errors[0]
    return None


def _batched(shape: tuple[int, ...], batch: int, seq_first: bool) -> tuple[int, ...]:
    """(batch, *shape), or (shape[0], batch, *shape[1:]) for a sequence-first model's sequences."""
    return (shape[0], batch, *shape[1:]) if seq_first and len(shape) >= 2 else (batch, *shape)


def _try(model: nn.Module, inputs: tuple, what: str) -> None:
    with preserved(model), torch.no_grad():
        model.eval()
        try:
            model(*inputs)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's forward is reported
            msg = one_line(exc)
            raise InputError(f"{msg}" if not what else f"forward pass fails with {what} ({msg}); "
                             "pass --input-shape or define example_inputs()") from exc
