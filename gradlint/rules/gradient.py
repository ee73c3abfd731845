"""GL1xx: gradient scale, read from the GSC profile along the spine."""

from __future__ import annotations

from ..report import Layer, ModelReport, Shift
from . import examples as ex
from .base import Rule, at_least, at_most, fmt, grade, plain_runs, residual_fix, spine_points


class ExplodingGradients(Rule):
    """What it does:
    Flags a large Gradient Scale Coefficient on the spine: the relative gradient at input-side layers
    is many times that at the output, usually growing exponentially with depth.

    GSC(H) = ||dY/dH||_qm * ||H|| / ||Y|| is the RMS relative change of the output per relative change
    of H (un-squared form). The rule reads the largest GSC on the spine and the explosion rate r, the
    per-layer growth from a least-squares fit of ln GSC against depth, with the fit's R^2.

    Why is this bad?
    A GSC of 1000 means a step that changes the input-side layers by 0.1% changes the output by ~100%:
    no learning rate suits both ends, so the lower layers barely train and the network's effective
    depth is small. Batch normalisation, layer normalisation with tanh, and SeLU keep forward
    statistics perfect and still explode.

    Defaults (measured with gradlint on the paper's 50-layer width-100 MLPs, on healthy references
    and on stock architectures at their library init, `benchmarks/zoo.py` and
    `benchmarks/stability.py`): `info` at GSC >= 15, `warning` at 200, `error` at 1000. The paper's
    exploding nets: batch-ReLU ~5e3-1e4, batch-tanh ~110, layer-norm-tanh 60-75, SeLU 6-7 (the last
    three are warnings through their rate, see below). Stock nets that train with their standard
    recipes, at 64x64 and 224x224 inputs: torchvision resnet50 at its default init 36-102 (1 with
    `zero_init_residual=True`, which torchvision offers for it), vgg19_bn 17-25, timm deit_tiny 30
    (at its first block, not growing with depth): info; densenet121 5-13.5, efficientnet_b0 4.3-10.7,
    mobilenet_v3_small 3.4-6.3, resnet18 1.5-3.9, the rest ~1: nothing. The levels sit in the gaps of
    these ranges, so that a model's verdict does not change with the input size (an `info` at 3
    flipped resnet18 between clean and info).
    The explosion rate r is fitted over the body of the network: spine points after the network
    pools its positions away (a CNN's classifier after global pooling, a class-token head) are left
    out, since the GSC drops across pooling by a factor that says nothing about depth. A rate
    r >= 1.03 (`rate`) fitted with R^2 >= 0.95 (`min-r2`) over at least 20 body points (`min-points`),
    in a network with at least 20 depth-bearing layers in a row without a residual connection
    (`min-plain`), is at least a `warning`: sustained exponential growth over a deep plain stack, even
    before it is large. That catches the paper's mildest exploding net, SeLU (r = 1.032-1.038,
    R^2 >= 0.98, GSC only 6-7), and He et al.'s degradation problem: a plain 30-layer BN-ReLU conv
    stack (r 1.21 over 31 body points, GSC 31: warning), the depth at which their plain-34 trained
    worse than plain-18. VGG-19-BN has 17 body points (16 convs and the input) and is not judged on
    its rate; residual nets are not either (EfficientNet-B0 grows 1.029-1.03 per layer through its
    blocks to a GSC of 4-11, and trains); the non-exploding MLPs (ReLU, tanh, linear,
    layer-norm-ReLU) have r <= 1.024, and R^2 <= 0.92 whenever r > 1.01.

    Example:
    A 30-layer `Linear -> BatchNorm1d -> ReLU` stack with He init: GSC ~360, r ~1.22 per layer.

    How to fix:
    Add residual connections (the skip dilutes the branch: GSC_block^2 = (k^2 + GSC_branch^2)/(k^2+1)),
    use fewer layers and more width, or start from an orthogonal initial state.

    References:
    Philipp, Song & Carbonell, "Gradients explode - Deep Networks are shallow - ResNet explained"
    (arXiv 1712.05577), sections 2-4; Yang et al., "A mean field theory of batch normalization" (ICLR 2019);
    He et al., "Deep residual learning for image recognition" (CVPR 2016), Fig. 1 and Table 2 (plain-18
    against plain-34, both with BN); Goyal et al., "Accurate, large minibatch SGD" (2017), zero-initialised
    residual BN.
    """

    code = "GL101"
    name = "exploding-gradients"
    severity = "error"
    summary = "the Gradient Scale Coefficient grows large toward the input"
    options = {"info": 15.0, "warning": 200.0, "error": 1000.0, "rate": 1.03, "min-r2": 0.95, "min-points": 20,
               "min-plain": 20}
    what_if = ('zero-residual', 'looks-linear')
    triggers = (ex.batch_relu_mlp, ex.layer_norm_tanh_mlp, ex.dominant_branch_resnet,
                at_least(ex.plain_bn_relu_cnn, "warning"))
    clean = (ex.residual_mlp, ex.diluted_resnet, ex.looks_linear_mlp, at_most(ex.vgg19_bn_like, "info"))

    def check(self, report: ModelReport):
        s = report.summary
        points = spine_points(report)
        if s.gsc_max is None or not points:
            return
        worst = max(points, key=lambda x: x.gsc)
        hit = grade(s.gsc_max, [("error", self.opts["error"]), ("warning", self.opts["warning"]),
                                    ("info", self.opts["info"])])
        exponential = (s.explosion_rate is not None and s.explosion_fit_r2 is not None
                       and s.explosion_rate >= self.opts["rate"] and s.explosion_fit_r2 >= self.opts["min-r2"]
                       and s.fit_points >= self.opts["min-points"]
                       and max(map(len, plain_runs(report)), default=0) >= self.opts["min-plain"])
        if exponential and (hit is None or hit[0] == "info"):
            hit = ("warning", self.opts["warning"])
        if hit is None:
            return
        severity, threshold = hit
        growth = (f"grows exponentially, {s.explosion_rate:.3f}x per layer (fit R^2 {s.explosion_fit_r2:.2f})"
                  if exponential else
                  f"(rate {s.explosion_rate:.3f}x per layer, R^2 {fmt(s.explosion_fit_r2)}: not a clean exponential)"
                  if s.explosion_rate is not None else "")
        blocks = report.residual_blocks
        fix = ("Add residual connections (x + f(x)) around the plain layers, so each block is diluted by its skip"
               if not blocks else
               f"Make the skips dominate: {residual_fix(report)}")
        yield self.finding(
            report, layer=worst, severity=severity, value=s.gsc_max, threshold=threshold,
            message=f"GSC reaches {fmt(s.gsc_max)} at {worst.name} (depth {worst.depth} of "
                    f"{s.compositional_depth}); the relative gradient {growth}".rstrip(),
            recommendation=f"{fix}; prefer width over depth; or start from an orthogonal initial state.",
        )


def gsc_steps(points: list[Layer]) -> list[tuple[Layer, Layer, float]]:
    """(deeper point, next point toward the output, factor by which the GSC grows between them)."""
    return [(a, b, b.gsc / a.gsc) for a, b in zip(points, points[1:]) if a.gsc and b.gsc]


def added_between(report: ModelReport, deeper: Layer, shallower: Layer) -> list[Shift]:
    """The parameters added to or concatenated with the data on the spine between two spine points."""
    return [sh for sh in report.shifts if sh.spine and sh.depth is not None and deeper.depth is not None
            and shallower.depth is not None and shallower.depth < sh.depth <= deeper.depth]


def shift_text(sh: Shift) -> str:
    verb = "concatenated" if sh.name.split(".")[-1].startswith("cat") else "added"
    return f"{sh.parameter} is {verb} at {sh.name} ({fmt(sh.ratio)}x the data's scale)"


class VanishingGradients(Rule):
    """What it does:
    Flags a GSC far below 1 at input-side spine points: the output hardly depends on those layers.

    Why is this bad?
    When the relative gradient shrinks toward the input, the input-side layers (and the input
    itself) barely influence the output. With PyTorch's default `nn.Linear` init (weight variance
    1/(3 fan_in)) and its uniform biases, a deep ReLU or tanh MLP shrinks the signal ~0.4-0.6x per
    layer until the biases dominate and every input maps to the same output. A parameter added to
    the data path at a scale that dominates it (a position embedding or class token drawn with std 1)
    does the same in one step.

    The GSC is read over the body of the network, relative to its value where the body meets the
    head: across global pooling (a CNN's classifier, a pooled sentence vector) the GSC drops by a
    factor that depends on how correlated the positions are, not on depth (a 5-block conv net with
    squeeze-excitation: 1 at the output, 0.1 on the whole body), so the head is not judged. Nor is
    the inner path of a U-Net (the spine points under its long skips): at initialisation the skips
    carry most of the gradient past the bottleneck by design (a DDPM U-Net: 0.06 at its bottleneck,
    and it trains). The message quotes a per-layer rate only when ln GSC fits a line against depth
    (R^2 >= 0.9, `min-r2`); otherwise it names the step where the GSC falls most, and the parameters
    added to the data there.

    Defaults: `warning` below 0.1 when the GSC decays with depth (a rate below 1 that fits, R^2 >= 0.9),
    `info` when it falls in a step or two without such a decay (a word-level LSTM language model at
    its published init: 0.077 across the LSTM, and it trains; a TCN: 0.04, with R^2 0.48), `error`
    below 1e-3 however it falls (default-init 20-layer ReLU MLP: 1e-7, a clean decay; a small conv net
    with BN: 0.4; a 4-layer default-init MLP: 0.56).

    Example:
    `nn.Sequential(*[nn.Sequential(nn.Linear(100, 100), nn.ReLU()) for _ in range(20)])` with PyTorch's
    default init (tanh behaves the same way).

    How to fix:
    Use a variance-preserving init (`nn.init.kaiming_normal_` for ReLU, `xavier_normal_` or
    orthogonal with gain 1 for tanh) with zero biases, or normalisation layers, or residual
    connections. Where a position embedding or class token outweighs the data, see GL304.

    References:
    Philipp et al. (arXiv 1712.05577); He et al., "Delving deep into rectifiers" (2015); Glorot &
    Bengio, "Understanding the difficulty of training deep feedforward networks" (2010).
    """

    code = "GL102"
    name = "vanishing-gradients"
    severity = "error"
    summary = "the Gradient Scale Coefficient shrinks far below 1 toward the input"
    options = {"warning": 0.1, "error": 1e-3, "min-r2": 0.9}
    what_if = ('looks-linear', 'orthogonal')
    triggers = (ex.default_init_relu_mlp,)
    clean = (ex.he_relu_mlp, ex.residual_mlp, ex.squeeze_excitation_net, ex.small_token_vit)

    def check(self, report: ModelReport):
        body = [x for x in spine_points(report) if not x.head and not x.nested]
        if not body:
            return
        end = min(body, key=lambda x: x.depth)  # where the body meets the head (the output when there is none)
        worst = min(body, key=lambda x: x.gsc)
        relative = worst.gsc / end.gsc if end.gsc else None
        hit = grade(relative, [("error", self.opts["error"]), ("warning", self.opts["warning"])], above=False) \
            if relative is not None else None
        if hit is None:
            return
        s = report.summary
        decays = (s.explosion_rate is not None and s.explosion_rate < 1 and s.explosion_fit_r2 is not None
                  and s.explosion_fit_r2 >= self.opts["min-r2"])
        severity, threshold = hit
        if severity == "warning" and not decays:
            severity = "info"  # one step, not a decay with depth: a remark on where the output's dependence is weak
        if decays:
            how = f", {s.explosion_rate:.3f}x per layer (fit R^2 {s.explosion_fit_r2:.2f})"
            fix = ""
        else:
            deeper, shallower, factor = max(gsc_steps(body), key=lambda t: t[2], default=(None, None, None))
            how = ""
            fix = ""
            if deeper is not None and factor > 1:
                added = added_between(report, deeper, shallower)
                how = (f"; it falls most, {fmt(factor)}x, from {shallower.name} back to {deeper.name}"
                       + (f", where {'; '.join(shift_text(sh) for sh in added)}" if added else ""))
                if added:
                    fix = (f" Where {', '.join(sh.parameter for sh in added)} outweigh the data, drawing them small "
                           "(nn.init.trunc_normal_(std=0.02)) makes the output depend on the input from the start "
                           "(GL304).")
        of = "" if end.depth == 0 else f" ({fmt(relative)} of its {fmt(end.gsc)} where the body meets the head, {end.name})"
        yield self.finding(
            report, layer=worst, severity=severity, value=relative, threshold=threshold,
            message=f"GSC falls to {fmt(worst.gsc)} at {worst.name} (depth {worst.depth}){of}{how}: the output "
                    "barely depends on the input-side layers",
            recommendation="Use a variance-preserving init with zero biases (kaiming_normal_ for ReLU, "
                           "xavier_normal_ or orthogonal_ for tanh), normalisation, or residual connections." + fix,
        )
