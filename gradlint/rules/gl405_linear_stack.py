"""GL405 linear-stack: linear layers in a row with no nonlinearity between them: one linear map."""

from __future__ import annotations

from ..report import Layer, ModelReport
from . import examples as ex
from .base import Rule, span
from .examples import randn, seeded_torch

# Layers that are linear maps of their input (with a weight of their own), and the norms that are affine
# per sample once trained (BatchNorm's running statistics); a layer norm divides by a statistic of the
# sample itself and is not linear.
LINEAR_OPS = frozenset({"Linear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                        "ConvTranspose3d", "linear", "conv1d", "conv2d", "conv3d", "addmm", "matmul", "mm"})
AFFINE_NORMS = ("BatchNorm", "batch_norm", "SyncBatchNorm")


def linear_mlp():
    """12 Linear layers with no activation between them (a Sequential that forgot its activations)."""
    torch, nn = seeded_torch()
    layers = [nn.Linear(64, 64) for _ in range(12)]
    for lin in layers:
        nn.init.orthogonal_(lin.weight)
        nn.init.zeros_(lin.bias)
    return nn.Sequential(*layers, nn.Linear(64, 10)), (randn(128, 64),)


def low_rank_mlp():
    """ReLU blocks whose weight is factored into two Linear maps (64 -> 8 -> 64): linear pairs by design."""
    torch, nn = seeded_torch()
    layers = []
    for _ in range(4):
        layers += [nn.Linear(64, 8, bias=False), nn.Linear(8, 64), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(64, 10)), (randn(128, 64),)


def linear_runs(report: ModelReport) -> list[list[Layer]]:
    """Runs of linear layers on the data path with nothing but batch norms between them: any other node
    of the data path (a nonlinearity, a layer norm, a residual merge, an attention product) ends a run."""
    runs: list[list[Layer]] = [[]]
    for x in report.layers:
        if not x.spine or x.side is not None or x.kind == "input":
            continue
        if x.kind == "layer" and x.op in LINEAR_OPS and x.weight is not None:
            runs[-1].append(x)
        elif not (x.kind == "norm" and x.op.startswith(AFFINE_NORMS)):
            runs.append([])
    return [r for r in runs if r]


class LinearStack(Rule):
    """What it does:
    Flags a run of linear layers (Linear, convolutions; BatchNorm between them allowed) on the data path
    with no nonlinearity between them.

    Why is this bad?
    Linear maps compose into one linear map: however many layers the run has, it can represent no more
    than a single layer, while its depth makes optimisation harder (the gradient of a product of
    matrices) and costs parameters. A 50-layer linear net at init is perfectly healthy by every
    gradient-scale measure (GSC 1, nothing collapses), yet it cannot fit a task that is not linear: on
    the project's trainability benchmark it ends at loss 1.15 on the nonlinear teacher task, where a
    ResNet reaches 0.2-0.4. The usual cause is a `Sequential` that forgot its activations.

    Defaults: `warning` for 3 or more linear layers in a row (`length`). Two in a row are left alone:
    a low-rank factorisation (d -> r -> d) or attention's value and output projections are linear
    pairs by design.

    Example:
    `nn.Sequential(*[nn.Linear(64, 64) for _ in range(12)])`.

    How to fix:
    Put a nonlinearity (ReLU, GELU) between the layers, or replace the run by one layer.

    References:
    Saxe et al., "Exact solutions to the nonlinear dynamics of learning in deep linear neural networks"
    (ICLR 2014); Philipp et al. (arXiv 1712.05577), on pseudo-linearity.
    """

    code = "GL405"
    name = "linear-stack"
    severity = "warning"
    summary = "linear layers in a row with no nonlinearity between them: one linear map"
    options = {"length": 3}
    triggers = (linear_mlp,)
    clean = (ex.he_relu_mlp, ex.residual_mlp, low_rank_mlp, ex.small_token_vit, ex.looks_linear_mlp)

    def check(self, report: ModelReport):
        runs = [r for r in linear_runs(report) if len(r) >= self.opts["length"]]
        if not runs:
            return
        run = max(runs, key=len)
        whole = len(run) == sum(1 for x in report.layers if x.kind == "layer" and x.spine)
        yield self.finding(
            report, layer=run[0], value=float(len(run)), threshold=float(self.opts["length"]),
            message=f"{len(run)} linear layers in a row with no nonlinearity between them ({span(run)}): together "
                    "they are one linear map, so the depth adds no expressive power"
                    + ("; the whole network is linear and cannot fit a task that is not" if whole else "")
                    + (f" ({len(runs)} such runs)" if len(runs) > 1 else ""),
            recommendation=f"Put a nonlinearity (ReLU, GELU) between the layers of {span(run)}, or replace the run "
                           "by one layer.",
        )
