"""GL101 exploding-gradients: the Gradient Scale Coefficient grows large toward the input."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import (
    Rule,
    at_least,
    at_most,
    fmt,
    grade,
    plain_runs,
    residual_fix,
    spine_points,
)


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
    `benchmarks/stability.py`): `info` at GSC >= 15, `warning` at 500, `error` at 1000. The paper's
    exploding nets: batch-ReLU ~5e3-1e4, batch-tanh ~110, layer-norm-tanh 60-75, SeLU 6-7 (the last
    three are warnings through their rate, see below). Stock nets that train with their standard
    recipes, at 64x64 and 224x224 inputs: torchvision resnet50 at its default init 36-102 (1 with
    `zero_init_residual=True`, which torchvision offers for it), vgg19_bn 17-25, timm deit_tiny 30
    (at its first block, not growing with depth): info; densenet121 5-13.5, efficientnet_b0 4.3-10.7,
    mobilenet_v3_small 3.4-6.3, resnet18 1.5-3.9, the rest ~1: nothing. The levels sit in the gaps of
    these ranges, so that a model's verdict does not change with the input size (an `info` at 3
    flipped resnet18 between clean and info). The warning level was 200 until NAS-Bench-201
    (`benchmarks/nasbench201.py`): of 1,000 connected cells linted at batch 16, those with GSC
    200-406 (a cell summing several BN-ReLU-conv branches explodes through the sum) train to 87-93%
    on CIFAR-10, above the sample's mean; nothing else measured lies between 200 and 500.
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
    options = {"info": 15.0, "warning": 500.0, "error": 1000.0, "rate": 1.03, "min-r2": 0.95, "min-points": 20,
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
            report, layer=worst, severity=severity, value=s.gsc_max, threshold=threshold, error=s.gsc_max_error,
            message=f"GSC reaches {fmt(s.gsc_max)} at {worst.name} (depth {worst.depth} of "
                    f"{s.compositional_depth}); the relative gradient {growth}".rstrip(),
            recommendation=f"{fix}; prefer width over depth; or start from an orthogonal initial state.",
        )
