"""What each graph operation is, in the paper's terms: depth-bearing, nonlinearity, normalisation, merge."""

from __future__ import annotations

import operator

import torch
import torch.nn as nn
import torch.nn.functional as F

# Modules that mix features through a weight (the spec's depth-bearing layers).
DEPTH_MODULES: tuple[type, ...] = (
    nn.Linear,
    nn.Bilinear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.RNNBase,
    nn.RNNCellBase,
    nn.MultiheadAttention,
)
DEPTH_FUNCTIONS = {
    F.linear,
    F.bilinear,
    F.conv1d,
    F.conv2d,
    F.conv3d,
    F.conv_transpose1d,
    F.conv_transpose2d,
    F.conv_transpose3d,
}
# matmul-like ops are depth-bearing only when one operand is a parameter.
MATMUL_FUNCTIONS = {torch.matmul, torch.mm, torch.bmm, operator.matmul, torch.einsum}
MATMUL_METHODS = {"matmul", "mm", "bmm", "__matmul__"}

CHANNELS_FIRST_MODULES: tuple[type, ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    nn.GroupNorm, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)
CHANNELS_LAST_MODULES: tuple[type, ...] = (nn.Linear, nn.Bilinear, nn.LayerNorm, nn.Embedding, nn.MultiheadAttention)

NORM_MODULES: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())
NORM_FUNCTIONS = {F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm} | (
    {F.rms_norm} if hasattr(F, "rms_norm") else set()
)

# Nonlinearity families: "relu" (piecewise linear through 0, sign diversity is what matters),
# "saturating" (tanh, sigmoid, hardtanh: absolute pre-activation scale matters), "smooth" (the rest).
RELU, SATURATING, SMOOTH = "relu", "saturating", "smooth"
NONLINEAR_MODULES: dict[type, str] = {
    nn.ReLU: RELU, nn.ReLU6: RELU, nn.LeakyReLU: RELU, nn.PReLU: RELU, nn.RReLU: RELU,
    nn.Tanh: SATURATING, nn.Sigmoid: SATURATING, nn.Hardtanh: SATURATING,
    nn.Hardsigmoid: SATURATING, nn.Softsign: SATURATING,
    nn.ELU: SMOOTH, nn.SELU: SMOOTH, nn.CELU: SMOOTH, nn.GELU: SMOOTH, nn.SiLU: SMOOTH,
    nn.Mish: SMOOTH, nn.Softplus: SMOOTH, nn.Hardswish: SMOOTH, nn.Tanhshrink: SMOOTH,
    nn.LogSigmoid: SMOOTH,
}
NONLINEAR_FUNCTIONS: dict[object, str] = {
    F.relu: RELU, torch.relu: RELU, F.relu6: RELU, F.leaky_relu: RELU, F.prelu: RELU,
    F.relu_: RELU, torch.relu_: RELU, F.leaky_relu_: RELU,
    torch.tanh: SATURATING, F.tanh: SATURATING, torch.sigmoid: SATURATING, F.sigmoid: SATURATING,
    F.hardtanh: SATURATING, F.hardsigmoid: SATURATING, F.softsign: SATURATING,
    F.elu: SMOOTH, F.selu: SMOOTH, F.celu: SMOOTH, F.gelu: SMOOTH, F.silu: SMOOTH, F.mish: SMOOTH,
    F.softplus: SMOOTH, F.hardswish: SMOOTH, F.logsigmoid: SMOOTH, torch.selu: SMOOTH,
}
NONLINEAR_METHODS: dict[str, str] = {
    "relu": RELU, "relu_": RELU, "tanh": SATURATING, "tanh_": SATURATING,
    "sigmoid": SATURATING, "sigmoid_": SATURATING,
}

MERGE_FUNCTIONS = {operator.add, operator.iadd, torch.add}
MERGE_METHODS = {"add", "add_", "__add__", "__iadd__"}

# Ops that return a view of their first argument: an in-place op on the result changes the argument.
VIEW_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.transpose,
                  torch.permute, operator.getitem}
VIEW_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute",
                "contiguous", "view_as", "expand", "expand_as", "t", "narrow", "unflatten"}
INPLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv,
                     F.relu_, torch.relu_, F.leaky_relu_, F.elu_}

# Saturation thresholds on the pre-activation: |tanh(x)| > 0.99, sigmoid(x) outside [0.01, 0.99].
TANH_SATURATION = 2.6467
SIGMOID_SATURATION = 4.5951


def module_kind(module: nn.Module) -> str:
    """'layer' (depth-bearing), 'nonlinearity', 'norm', 'embedding' or 'other'."""
    if isinstance(module, DEPTH_MODULES):
        return "layer"
    if nonlinear_family_of_module(module) is not None:
        return "nonlinearity"
    if isinstance(module, NORM_MODULES):
        return "norm"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    return "other"


def nonlinear_family_of_module(module: nn.Module) -> str | None:
    for cls, family in NONLINEAR_MODULES.items():
        if type(module) is cls or isinstance(module, cls):
            return family
    return None


def module_is_inplace(module: nn.Module) -> bool:
    return bool(getattr(module, "inplace", False))


def saturation_bounds(module_or_fn: object) -> tuple[float, float] | None:
    """Pre-activation interval outside which a saturating function is flat, or None."""
    if isinstance(module_or_fn, nn.Tanh) or module_or_fn in (torch.tanh, F.tanh, "tanh", "tanh_"):
        return (-TANH_SATURATION, TANH_SATURATION)
    if isinstance(module_or_fn, nn.Sigmoid) or module_or_fn in (torch.sigmoid, F.sigmoid, "sigmoid", "sigmoid_"):
        return (-SIGMOID_SATURATION, SIGMOID_SATURATION)
    if isinstance(module_or_fn, nn.Hardtanh):  # ReLU6 is a Hardtanh subclass but is ReLU-family
        if isinstance(module_or_fn, nn.ReLU6):
            return None
        return (float(module_or_fn.min_val), float(module_or_fn.max_val))
    if module_or_fn is F.hardtanh:
        return (-1.0, 1.0)
    if isinstance(module_or_fn, nn.Hardsigmoid) or module_or_fn is F.hardsigmoid:
        return (-3.0, 3.0)
    return None


def weight_of(module: nn.Module) -> torch.Tensor | None:
    """The weight whose orthogonality matters for a depth-bearing module."""
    if isinstance(module, nn.MultiheadAttention):
        return module.out_proj.weight
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        return getattr(module, "weight_hh_l0", None) if hasattr(module, "weight_hh_l0") else getattr(module, "weight_hh", None)
    if isinstance(module, nn.Bilinear):
        return module.weight.reshape(module.weight.shape[0], -1)
    w = getattr(module, "weight", None)
    return w if isinstance(w, torch.Tensor) else None
