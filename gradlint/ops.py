"""The op vocabulary: what each graph operation is, in the paper's terms.  One table, read by every
capture tier (torch.fx modules, functions and Tensor methods; torch.export's ATen ops; module hooks),
by ``gradlint.init`` and by the report's kind and family names.  Supporting a new layer or
activation is one row.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# Kinds and families are the vocabulary's (torch-free, so rules and renderers share them).
from .vocabulary import (CONSTANT, DROPOUT, EMBEDDING, INPUT, LAYER, MEASURED, MERGE, NONLINEARITY,  # noqa: F401
                         NORM, OPAQUE, OTHER, POOL, RELU, RESHAPE, SATURATING, SCALE, SHAPE, SMOOTH, VIEW)

# Saturation thresholds on the pre-activation: |tanh(x)| > 0.99, sigmoid(x) outside [0.01, 0.99].
TANH_SATURATION = 2.6467
SIGMOID_SATURATION = 4.5951

Arg = tuple[int, str]                 # (position, keyword) of an argument


@dataclass(frozen=True)
class Op:
    """One row of the vocabulary."""

    name: str
    kind: str
    family: str | None = None
    modules: tuple[type, ...] = ()
    functions: tuple[object, ...] = ()
    methods: tuple[str, ...] = ()
    aten: tuple[str, ...] = ()             # ATen overload packets (torch.export's training IR)
    weight: Arg | None = None              # where a function takes its weight
    bias: Arg | None = None
    aten_weight: Arg | None = None         # ... where the ATen op takes them, when different
    aten_bias: Arg | None = None
    module_weight: str = "weight"          # the parameter whose orthogonality a module's row judges
    units: str | None = None               # a module's unit dim: "first" (channels) or "last"; None: its input's
    keeps_zero: bool = False               # single input, 0 maps to 0 (a zeroed branch stays zero through it)
    phi: Callable | None = None            # the scalar function of a nonlinearity with default arguments
    saturation: tuple[float, float] | None = None
    needs_parameter: bool = False          # matmul-like: depth-bearing only with a parameter operand
    per_channel: bool = False              # a norm that subtracts each channel's batch mean (cancels a bias)
    inplace: bool = False                  # the function writes its first argument
    dropout_arg: Arg | None = None         # a dropout probability among its arguments, set to 0 during the probe

    def weight_arg(self, aten: bool) -> Arg | None:
        return self.aten_weight if aten and self.aten_weight else self.weight

    def bias_arg(self, aten: bool) -> Arg | None:
        return self.aten_bias if aten and self.aten_weight else self.bias


_conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_pool = tuple(getattr(nn, n) for n in dir(nn) if n.endswith(("Pool1d", "Pool2d", "Pool3d")))
_dropout = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
_rms = ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


def _act(name: str, family: str, modules: tuple, functions: tuple, methods: tuple = (), aten: tuple | None = None,
         phi=None, saturation=None, keeps_zero: bool = True, inplace_fns: tuple = ()) -> list[Op]:
    aten = (name,) if aten is None else aten  # F.softsign and F.tanhshrink decompose: no ATen op of their own
    rows = [Op(name, NONLINEARITY, family, modules, functions, methods, aten, keeps_zero=keeps_zero,
               phi=phi, saturation=saturation)]
    if inplace_fns:
        rows.append(Op(name + "_", NONLINEARITY, family, (), inplace_fns, (name + "_",), (name + "_",),
                       keeps_zero=keeps_zero, phi=phi, saturation=saturation, inplace=True))
    return rows


OPS: tuple[Op, ...] = (
    # Depth-bearing layers: mix features through a weight.
    Op("linear", LAYER, modules=(nn.Linear,), functions=(F.linear,), aten=("linear",), weight=(1, "weight"),
       bias=(2, "bias"), units="last"),
    Op("addmm", LAYER, functions=(torch.addmm,), aten=("addmm",), weight=(2, "mat2"), bias=(0, "input")),
    Op("bilinear", LAYER, modules=(nn.Bilinear,), functions=(F.bilinear,), aten=("bilinear",),
       weight=(2, "weight"), bias=(3, "bias"), units="last"),
    Op("conv", LAYER, modules=_conv,
       functions=(F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d),
       aten=("convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
             "conv_transpose3d"), weight=(1, "weight"), bias=(2, "bias"), units="first"),
    Op("rnn", LAYER, modules=(nn.RNNBase,), aten=("lstm", "gru", "rnn_tanh", "rnn_relu"),
       module_weight="weight_hh_l0", units="last"),
    Op("rnn_cell", LAYER, modules=(nn.RNNCellBase,), aten=("lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell"),
       module_weight="weight_hh", units="last"),
    Op("multihead_attention", LAYER, modules=(nn.MultiheadAttention,), module_weight="out_proj.weight", units="last"),
    Op("matmul", LAYER, functions=(torch.matmul, torch.mm, torch.bmm, operator.matmul, torch.einsum),
       methods=("matmul", "mm", "bmm", "__matmul__", "__rmatmul__"), aten=("matmul", "mm", "bmm", "einsum"),
       needs_parameter=True),
    Op("embedding", EMBEDDING, modules=(nn.Embedding, nn.EmbeddingBag), functions=(F.embedding, F.embedding_bag),
       aten=("embedding", "embedding_bag", "_embedding_bag"), weight=(1, "weight"), aten_weight=(0, "weight"),
       units="last"),
    # Normalisation.
    Op("batch_norm", NORM, modules=(nn.modules.batchnorm._BatchNorm,), functions=(F.batch_norm,),
       aten=("batch_norm", "_native_batch_norm_legit_functional", "native_batch_norm", "cudnn_batch_norm"),
       weight=(3, "weight"), bias=(4, "bias"), aten_weight=(1, "weight"), aten_bias=(2, "bias"), units="first",
       per_channel=True),
    Op("instance_norm", NORM, modules=(nn.modules.instancenorm._InstanceNorm,), functions=(F.instance_norm,),
       aten=("instance_norm",), weight=(3, "weight"), bias=(4, "bias"), aten_weight=(1, "weight"),
       aten_bias=(2, "bias"), units="first", per_channel=True),
    Op("layer_norm", NORM, modules=(nn.LayerNorm,), functions=(F.layer_norm,), aten=("layer_norm", "native_layer_norm"),
       weight=(2, "weight"), bias=(3, "bias"), units="last"),
    Op("group_norm", NORM, modules=(nn.GroupNorm,), functions=(F.group_norm,), aten=("group_norm", "native_group_norm"),
       weight=(2, "weight"), bias=(3, "bias"), units="first"),
    Op("rms_norm", NORM, modules=_rms, functions=((F.rms_norm,) if hasattr(F, "rms_norm") else ()),
       aten=("rms_norm",), weight=(2, "weight"), units="last"),
    Op("local_response_norm", NORM, modules=(nn.LocalResponseNorm,), functions=(F.local_response_norm,),
       units="first"),
    # Nonlinearities.
    *_act("relu", RELU, (nn.ReLU,), (F.relu, torch.relu), ("relu",), phi=F.relu, inplace_fns=(F.relu_, torch.relu_)),
    *_act("relu6", RELU, (nn.ReLU6,), (F.relu6,), phi=F.relu6),
    *_act("leaky_relu", RELU, (nn.LeakyReLU,), (F.leaky_relu,), phi=F.leaky_relu, inplace_fns=(F.leaky_relu_,)),
    *_act("prelu", RELU, (nn.PReLU,), (F.prelu,), aten=("prelu", "_prelu_kernel")),
    *_act("rrelu", RELU, (nn.RReLU,), (F.rrelu,), phi=lambda z: F.rrelu(z, training=False)),
    *_act("tanh", SATURATING, (nn.Tanh,), (torch.tanh, F.tanh), ("tanh",), phi=torch.tanh,
          saturation=(-TANH_SATURATION, TANH_SATURATION), inplace_fns=(torch.tanh_,)),
    *_act("sigmoid", SATURATING, (nn.Sigmoid,), (torch.sigmoid, F.sigmoid), ("sigmoid",), phi=torch.sigmoid,
          saturation=(-SIGMOID_SATURATION, SIGMOID_SATURATION), keeps_zero=False, inplace_fns=(torch.sigmoid_,)),
    *_act("hardtanh", SATURATING, (nn.Hardtanh,), (F.hardtanh,), phi=F.hardtanh, saturation=(-1.0, 1.0)),
    *_act("hardsigmoid", SATURATING, (nn.Hardsigmoid,), (F.hardsigmoid,), phi=F.hardsigmoid, saturation=(-3.0, 3.0),
          keeps_zero=False),
    *_act("softsign", SATURATING, (nn.Softsign,), (F.softsign,), aten=(), phi=F.softsign),
    *_act("elu", SMOOTH, (nn.ELU,), (F.elu,), phi=F.elu),
    *_act("selu", SMOOTH, (nn.SELU,), (F.selu, torch.selu), phi=F.selu),
    *_act("celu", SMOOTH, (nn.CELU,), (F.celu,), phi=F.celu),
    *_act("gelu", SMOOTH, (nn.GELU,), (F.gelu,), phi=F.gelu),
    *_act("silu", SMOOTH, (nn.SiLU,), (F.silu,), phi=F.silu),
    *_act("mish", SMOOTH, (nn.Mish,), (F.mish,), phi=F.mish),
    *_act("softplus", SMOOTH, (nn.Softplus,), (F.softplus,), phi=F.softplus, keeps_zero=False),
    *_act("hardswish", SMOOTH, (nn.Hardswish,), (F.hardswish,), phi=F.hardswish),
    *_act("tanhshrink", SMOOTH, (nn.Tanhshrink,), (F.tanhshrink,), aten=(), phi=F.tanhshrink),
    *_act("logsigmoid", SMOOTH, (nn.LogSigmoid,), (F.logsigmoid,), aten=("log_sigmoid",), phi=F.logsigmoid,
          keeps_zero=False),
    # Residual merges (an add on the spine whose operands pass different numbers of layers).
    Op("add", MERGE, functions=(operator.add, operator.iadd, torch.add),
       methods=("add", "add_", "__add__", "__iadd__", "__radd__"), aten=("add", "add_")),
    # Ops that carry values without mixing them: views, reshapes, dropout, pooling, scaling.
    Op("dropout", DROPOUT, modules=_dropout,
       functions=(F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
                  torch.dropout, torch.alpha_dropout, torch.feature_dropout, torch.feature_alpha_dropout),
       aten=("dropout", "native_dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"),
       keeps_zero=True),
    Op("identity", VIEW, modules=(nn.Identity,), keeps_zero=True),
    Op("view", VIEW, functions=(torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.transpose,
                                torch.permute, operator.getitem, torch.t, torch.narrow, torch.unflatten, torch.chunk,
                                torch.split, torch.unbind, torch.tensor_split),
       methods=("view", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute", "contiguous",
                "view_as", "expand", "expand_as", "t", "narrow", "unflatten", "__getitem__", "chunk", "split",
                "unbind", "tensor_split"),
       aten=("view", "_unsafe_view", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute",
             "expand", "t", "narrow", "alias", "slice", "select", "contiguous", "unflatten", "chunk", "split",
             "split_with_sizes", "unbind", "tensor_split"),
       keeps_zero=True),
    Op("flatten", RESHAPE, modules=(nn.Flatten, nn.Unflatten, nn.PixelShuffle, nn.PixelUnshuffle, nn.Upsample),
       functions=(F.interpolate, F.pixel_shuffle, F.pixel_unshuffle), methods=("clone", "to", "float", "double", "half"),
       aten=("clone", "to", "_to_copy", "pixel_shuffle", "pixel_unshuffle", "upsample_nearest2d",
             "upsample_bilinear2d"), keeps_zero=True),
    Op("pool", POOL, modules=_pool,
       functions=tuple(getattr(F, n) for n in dir(F) if n.endswith(("pool1d", "pool2d", "pool3d"))
                       and not n.startswith("fractional")),
       aten=("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
             "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
             "adaptive_max_pool2d", "adaptive_max_pool3d", "max_pool2d_with_indices"),
       units="first", keeps_zero=True),
    Op("neg", VIEW, functions=(torch.neg, operator.neg), methods=("neg", "__neg__"), aten=("neg",), keeps_zero=True),
    Op("mul", SCALE, functions=(operator.mul, operator.imul, torch.mul),
       methods=("mul", "mul_", "__mul__", "__rmul__", "__imul__"), aten=("mul", "mul_")),
    # Attention as one op (q, k, v all carry data: not depth-bearing); its dropout is off during the probe.
    Op("sdpa", OTHER, functions=(F.scaled_dot_product_attention,), aten=("scaled_dot_product_attention",),
       dropout_arg=(4, "dropout_p")),
    # A model that returns probabilities or log-probabilities: the GSC is read relative to their logits.
    Op("softmax", OTHER, modules=(nn.Softmax,), functions=(F.softmax, torch.softmax), methods=("softmax",),
       aten=("softmax", "_softmax")),
    Op("log_softmax", OTHER, modules=(nn.LogSoftmax,), functions=(F.log_softmax, torch.log_softmax),
       methods=("log_softmax",), aten=("log_softmax", "_log_softmax")),
    # Concatenation: a skip when its operands pass different numbers of layers (U-Net, DenseNet).
    Op("cat", OTHER, functions=tuple(f for f in (torch.cat, getattr(torch, "concat", None),
                                                 getattr(torch, "concatenate", None)) if f is not None),
       aten=("cat", "concat")),
    # Shape queries read no values: they start no path.
    Op("shape", SHAPE, functions=(getattr, torch.numel), methods=("size", "dim", "numel", "ndimension", "nelement"),
       aten=("sym_size", "sym_numel", "sym_stride")),
    # New tensors shaped like a value take none of its values (an attention mask built on x.new_zeros,
    # a VAE's randn_like noise): no path runs through them either.
    Op("like", SHAPE, functions=(torch.zeros_like, torch.ones_like, torch.full_like, torch.empty_like,
                                 torch.rand_like, torch.randn_like, torch.randint_like),
       methods=("new_zeros", "new_ones", "new_full", "new_empty", "new_tensor"),
       aten=("zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like", "randint_like",
             "new_zeros", "new_ones", "new_full", "new_empty")),
    Op("div", SCALE, functions=(operator.truediv, operator.itruediv, torch.div, torch.true_divide),
       methods=("div", "div_", "__truediv__", "true_divide"), aten=("div", "div_")),
)

# Modules outside torch that switch stochastic regularisation off in eval mode (timm, torchvision).
DROPOUT_MODULE_NAMES = ("DropPath", "StochasticDepth", "DropBlock", "DropBlock2d")

_BY_MODULE: dict[type, Op] = {}
_BY_FUNCTION: dict[object, Op] = {}
_BY_METHOD: dict[str, Op] = {}
_BY_ATEN: dict[str, Op] = {}
for _op in OPS:
    for _cls in _op.modules:
        _BY_MODULE.setdefault(_cls, _op)
    for _fn in _op.functions:
        _BY_FUNCTION.setdefault(_fn, _op)
    for _name in _op.methods:
        _BY_METHOD.setdefault(_name, _op)
    for _name in _op.aten:
        _BY_ATEN.setdefault(_name, _op)


_BY_NAME: dict[str, Op] = {op.name: op for op in OPS}


def by_name(name: str) -> Op:
    return _BY_NAME[name]


def of_module(module: nn.Module) -> Op | None:
    """The row of a module, by its class or the nearest base class in the table (ReLU6 before Hardtanh)."""
    for cls in type(module).__mro__:
        op = _BY_MODULE.get(cls)
        if op is not None:
            return op
    return None


def of_function(fn: object) -> Op | None:
    try:
        return _BY_FUNCTION.get(fn)
    except TypeError:  # unhashable callables
        return None


def of_method(name: str) -> Op | None:
    return _BY_METHOD.get(name)


def of_aten(target: object) -> Op | None:
    """The row of an ATen op overload (``torch.ops.aten.linear.default``)."""
    return _BY_ATEN.get(aten_name(target) or "")


def aten_name(target: object) -> str | None:
    packet = getattr(target, "overloadpacket", None)
    if packet is None or getattr(target, "namespace", None) != "aten":
        return None
    return getattr(packet, "__name__", None)


SOFTMAX_ROWS = ("softmax", "log_softmax")


def is_dropout_module(module: nn.Module) -> bool:
    op = of_module(module)
    return (op is not None and op.kind == DROPOUT) or type(module).__name__ in DROPOUT_MODULE_NAMES


def without_dropout(op: Op, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """The arguments of an op with a dropout probability, with that probability 0."""
    position, keyword = op.dropout_arg
    if position < len(args):
        args = args[:position] + (0.0,) + args[position + 1:]
    elif keyword in kwargs:
        kwargs = {**kwargs, keyword: 0.0}
    return args, kwargs


def module_is_inplace(module: nn.Module) -> bool:
    return bool(getattr(module, "inplace", False))


def module_layers(module: nn.Module) -> int:
    """Depth-bearing layers a module stands for on a path: stacked RNN layers (directions run side by
    side, so a path passes one per stacked layer), MultiheadAttention's input and output projections."""
    if isinstance(module, nn.RNNBase):
        return int(module.num_layers)
    if isinstance(module, nn.MultiheadAttention):
        return 2
    op = of_module(module)
    return 1 if op is not None and op.kind == LAYER else 0


def module_weight(module: nn.Module) -> torch.Tensor | None:
    """The weight whose orthogonality the report judges for a depth-bearing module."""
    op = of_module(module)
    if op is None or op.kind != LAYER:
        return None
    value: object = module
    for part in op.module_weight.split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, torch.Tensor) else None


def module_saturation(module: nn.Module) -> tuple[float, float] | None:
    """Pre-activation interval outside which a saturating module is flat (Hardtanh reads its bounds)."""
    op = of_module(module)
    if op is None or op.family != SATURATING:
        return None
    if op.name == "hardtanh":
        return (float(module.min_val), float(module.max_val))
    return op.saturation


def module_phi(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The scalar function of a nonlinearity module, evaluated on a float64 copy in eval mode."""
    import copy

    try:
        m = copy.deepcopy(module).to(torch.float64).eval()
    except Exception:  # noqa: BLE001 - a module we cannot copy has no known phi
        return None
    channels = int(getattr(m, "num_parameters", 1)) if isinstance(m, nn.PReLU) else 1

    def phi(z: torch.Tensor) -> torch.Tensor:
        return m(z[:, None].repeat(1, channels))

    return phi
