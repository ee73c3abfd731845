"""GL203 pseudo-linear-nonlinearity: consecutive nonlinearities are almost linear on their pre-activation domain."""

from __future__ import annotations

from ..report import Layer, ModelReport
from . import examples as ex
from .base import collapsed, fmt, fmt_bar
from .collapsing import CollapseRule
from .examples import randn, seeded_torch


def pooler_tanh_head():
    """An encoder whose classifier sits behind one tanh on a pooled vector (BERT's pooler): one
    pseudo-linear nonlinearity costs one layer of depth, at most info."""
    torch, nn = seeded_torch()

    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(32, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, 64), nn.LayerNorm(64))
            self.pooler = nn.Linear(64, 64)
            self.act = nn.Tanh()
            self.head = nn.Linear(64, 4)
            for m in self.modules():
                if isinstance(m, nn.Linear):  # BERT's init: N(0, 0.02), zero bias
                    nn.init.normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            return self.head(self.act(self.pooler(self.body(x).mean(1))))

    return Pooled(), (randn(16, 12, 32),)


class PseudoLinear(CollapseRule):
    """What it does:
    Flags nonlinearities that act as linear functions on the inputs they actually see (the per-unit
    score 1 - corr(x, phi(x))^2 is near 0), graded by the depth they lose: the longest run of
    consecutive pseudo-linear nonlinearities, whose layers compose into one linear map.

    Why is this bad?
    A pseudo-linear layer adds no representational power: a tanh network that is pseudo-linear above
    depth k is roughly as expressive as a depth-(k+1) network, so what matters is how many layers in a
    row collapse into one linear map. Plain tanh stacks shrink the pre-activation std with depth until
    tanh is the identity on its domain. One pseudo-linear nonlinearity (the tanh of BERT's pooler, in
    front of a classifier) costs one layer of depth and is a remark, not a defect.

    Defaults: a nonlinearity is pseudo-linear below 0.01 (`pseudo-linear`); `warning` from 3 in a row
    (`warning`); shorter runs are not reported. Never an error: the lost depth costs expressive power,
    and a net that needs less trains anyway. On the project's trainability benchmark
    (`benchmarks/trainability.py`) the 50-layer LeCun tanh MLP reaches 0.94 test accuracy on
    scikit-learn's digits (nearly linear) and ends at loss 0.76 on the nonlinear teacher task, where the
    paper's ResNet ends at 0.06. Measured: the paper's 50-layer tanh MLP (LeCun init) has 47 in a row
    (scores 0.0079 down to 2e-5); layer-norm-tanh (0.054),
    batch-tanh (0.058) and SeLU (0.018) have none; BERT's pooler tanh 6e-4 (4 layers, width 128) and
    0.009 (BERT-base) is a run of 1, timm's nfnet_l0 at 64x64 inputs a run of 2 in its last stage (none
    at 224x224): not reported; healthy GELU in a pre-norm Transformer 0.19. ReLU-family
    layers are judged by GL202 instead (for them pseudo-linearity is the loss of sign diversity);
    layers whose domain collapsed (GL201) are left to that rule; gates (squeeze-excitation sigmoids in
    MobileNetV3, EfficientNet and RegNetY, GLU gates, the tanh inside GPT-2's GELU formula: a
    nonlinearity whose value multiplies another path) are not judged: they modulate the path they
    multiply and are not links of the depth path, and their narrow operating range is by design.

    Example:
    A 40-layer `Linear -> Tanh` MLP with weight variance 1/fan_in.

    How to fix:
    Add residual connections, normalise before the nonlinearity, or use fewer, wider layers.

    References:
    Philipp et al. (arXiv 1712.05577), "pseudo-linearity"; Philipp & Carbonell, "The nonlinearity
    coefficient" (2018); Hu et al., "Squeeze-and-Excitation Networks" (CVPR 2018) for gates.
    """

    code = "GL203"
    name = "pseudo-linear-nonlinearity"
    severity = "warning"
    summary = "consecutive nonlinearities are almost linear on their pre-activation domain"
    options = {"pseudo-linear": 0.01, "warning": 3}
    what_if = ('looks-linear', 'orthogonal')
    triggers = (ex.lecun_tanh_mlp,)
    clean = (ex.layer_norm_tanh_mlp, ex.looks_linear_mlp, ex.squeeze_excitation_net,
             pooler_tanh_head)

    def judge(self, report: ModelReport, layers: list[Layer]):
        sequence = [x for x in layers if not collapsed(x, self.collapse_level())]
        runs: list[list[Layer]] = [[]]
        for x in sequence:
            if x.family != "relu" and x.nonlinearity is not None and x.nonlinearity < self.opts["pseudo-linear"]:
                runs[-1].append(x)
            elif runs[-1]:
                runs.append([])
        run = max(runs, key=len)
        if not run:
            return
        if len(run) < self.opts["warning"]:
            return  # a layer or two of depth lost is not worth a remark (and flips with the input size)
        worst = min(run, key=lambda x: x.nonlinearity)
        std = f", pre-activation std {fmt(worst.preact_std)}" if worst.family == "saturating" else ""
        total = sum(len(r) for r in runs)
        others = (f"; {total} of {len(sequence)} judged nonlinearities are below {self.opts['pseudo-linear']:g}"
                  if total > len(run) else "")
        what = (f"{len(run)} nonlinearities in a row are pseudo-linear ({run[0].name}..{run[-1].name}): their layers "
                f"compose into one linear map, {len(run)} layers of depth lost; lowest 1 - corr^2 = "
                f"{fmt_bar(worst.nonlinearity, worst.nonlinearity_error)} at {worst.name} ({worst.op}){std}")
        yield self.finding(
            report, layer=worst, value=float(len(run)),
            threshold=float(self.opts["warning"]),
            message=what + others,
            recommendation="Add residual connections or normalise before the nonlinearity; with fewer, wider "
                           "layers each nonlinearity keeps a larger domain.",
        )
