"""GL4xx: architecture: depth without residual connections, depth against width, residual dilution."""

from __future__ import annotations

from ..report import DOMINANT_DILUTION, Layer, ModelReport
from . import examples as ex
from .base import Rule, at_least, depth_layers, fmt, grade, pathology, plain_runs, residual_fix, span


class DeepPlainStack(Rule):
    """What it does:
    Flags a long run of depth-bearing layers on the spine with no residual connection.

    Why is this bad?
    Depth without skip connections is where exploding gradients and collapsing domains come from:
    their effects compound layer by layer. A residual connection dilutes each block
    (GSC_block^2 = (k^2 + GSC_branch^2)/(k^2 + 1)), so a ResNet's effective depth grows gently.

    Defaults: 20 layers. `warning` when the model also explodes or collapses (a GL1xx or GL2xx finding
    at warning or above), else `info`. VGG-16 and VGG-19 have 16 and 19 depth-bearing layers and train
    with BN (torchvision's vgg19_bn: no finding); the paper's 50-layer MLPs fail; He et al.'s plain
    34-layer BN net trains worse than the 18-layer one, and a plain 30-layer BN-ReLU conv stack is a
    warning here through its explosion (GL101).

    Example:
    `nn.Sequential` of 50 `Linear -> BatchNorm1d -> ReLU` blocks.

    How to fix:
    Add skip connections around the layers named in the message (`x = x + f(x)` every one or two
    layers), or trade depth for width.

    References:
    Philipp et al. (arXiv 1712.05577), "ResNet explained"; He et al., "Deep residual learning" (2016).
    """

    code = "GL401"
    name = "deep-plain-stack"
    severity = "warning"
    summary = "many depth-bearing layers in a row without a residual connection"
    options = {"length": 20}
    what_if = ('looks-linear',)
    triggers = (ex.batch_relu_mlp, at_least(ex.plain_bn_relu_cnn, "warning"))
    clean = (ex.residual_mlp, ex.shallow_mlp, ex.vgg19_bn_like)
    after_others = True

    def check_after(self, report: ModelReport, earlier):
        runs = [r for r in plain_runs(report) if len(r) >= self.opts["length"]]
        if not runs:
            return
        run = max(runs, key=len)
        severity = "warning" if pathology(earlier) else "info"
        yield self.finding(
            report, layer=run[0], severity=severity, value=float(len(run)), threshold=float(self.opts["length"]),
            message=f"{len(run)} depth-bearing layers in a row without a residual connection ({span(run)})",
            recommendation=f"Add residual connections around layers {span(run)} (x = x + f(x) every one or two "
                           "layers), or use fewer, wider layers.",
        )


def hanin_beta(report: ModelReport) -> tuple[float, list[Layer], list[Layer]] | None:
    """The largest sum of 1/width over the hidden Linear layers of one plain run, with the run and those layers."""
    best = None
    for run in plain_runs(report):
        hidden = [x for x in run[:-1] if x.op == "Linear" and x.width]
        beta = sum(1.0 / x.width for x in hidden)
        if hidden and (best is None or beta > best[0]):
            best = (beta, run, hidden)
    return best


class DepthAgainstWidth(Rule):
    """What it does:
    Computes Hanin's beta, the sum of 1/width over the hidden fully connected layers of each plain
    run on the spine (consecutive `Linear` layers with no residual connection; the run's last layer
    is its output and does not count), and flags runs where it is large: a stack that is deep for
    its width.

    Why is this bad?
    For a randomly initialised fully connected ReLU network, the variance of the squared entries of
    the input-output Jacobian grows exponentially in beta: when beta is large, gradients at
    initialisation vary wildly from input to input, whatever the init's scale. A trainable net
    needs hidden layers about as wide as it is deep (beta well under 1). The GSC measures the
    average gradient scale; beta predicts its input-to-input fluctuation, which one probe batch
    does not show.

    Defaults: `info` at beta >= 0.5 (the paper's 50-layer width-100 MLPs), `warning` at beta >= 1
    (deeper than wide). Convolutional layers are not counted: the theory is for fully connected
    nets, and positions pool statistics.

    Example:
    24 `Linear(16, 16)` layers: beta = 23/16 = 1.44.

    How to fix:
    Widen the layers or remove some: beta = depth / width for a constant-width stack. Residual
    connections also help, since each block then adds only a diluted share of its fluctuation.

    References:
    Hanin, "Which Neural Net Architectures Give Rise to Exploding and Vanishing Gradients?"
    (NeurIPS 2018); Philipp et al. (arXiv 1712.05577), "widen instead of deepen".
    """

    code = "GL402"
    name = "depth-against-width"
    severity = "warning"
    summary = "a plain fully connected stack that is deep for its width (sum of 1/width large)"
    options = {"info": 0.5, "warning": 1.0}
    triggers = (ex.narrow_deep_mlp,)
    clean = (ex.wide_shallow_mlp, ex.residual_mlp)

    def check(self, report: ModelReport):
        best = hanin_beta(report)
        hit = grade(best[0], [("warning", self.opts["warning"]), ("info", self.opts["info"])]) if best else None
        if hit is None:
            return
        beta, run, hidden = best
        severity, threshold = hit
        widths = sorted({x.width for x in hidden})
        width = f"width {widths[0]}" if len(widths) == 1 else f"widths {widths[0]}-{widths[-1]}"
        yield self.finding(
            report, layer=hidden[0], severity=severity, value=beta, threshold=threshold,
            message=f"{len(hidden)} hidden fully connected layers of {width} in a row ({span(run)}): "
                    f"sum of 1/width = {beta:.2f}; gradients at initialisation fluctuate like exp(beta) "
                    "from input to input",
            recommendation=f"Widen these layers or use fewer of them (beta = depth/width; keep it under "
                           f"{self.opts['info']:g}), or add residual connections around {span(run)}.",
        )


class DominantResidualBranch(Rule):
    """What it does:
    Flags residual blocks whose branch output is clearly larger than the skip it is added to:
    dilution k = ||skip|| / ||branch|| below 0.9.

    Why is this bad?
    A residual block helps because the skip dilutes the branch: the block's squared GSC is
    (k^2 + GSC_branch^2) / (k^2 + 1), so with k >> 1 the block is close to the identity and
    gradients pass it unchanged. With k < 1 the branch dominates and the block behaves like a plain
    layer: its explosion and collapse compound with depth as in a network without skips, and the
    effective depth approaches the compositional depth.

    Defaults: a block dominates below k = 0.9 (`dilution`). `warning` when at least a quarter of the
    blocks dominate (`fraction`) and the network's GSC reaches 10 (`gsc`), else `info` when any
    block dominates. Measured: paper ResNets with branches x0.1-x1 have k = 1.4-16 (no finding); a
    BN ResNet-18-like net with standard init has k = 0.71 in its first blocks and GSC 2-4 (info: it
    trains, and `zero_init_residual=True` still helps); post-norm blocks `LN(x + 4 f(x))` keep
    k ~ 0.35 in every block and reach GSC 23 after 16 blocks (warning). The margin below 1 matters:
    a block whose branch and projection skip both end in a BatchNorm with weight 1 (torchvision's
    ResNets, EfficientNet, MobileNetV3 at their first block of each stage) has k = 1.00 by
    construction, and `k < 1` decided by noise whether 12% or 25% of resnet50's blocks dominated
    (a warning at one input size, info at another).

    Example:
    Blocks `x + 4 * f(x)`, or a ResNet whose branches end in a BatchNorm with weight 1 while the
    skip is small.

    How to fix:
    Zero-initialise the last normalisation or linear layer of each branch (torchvision:
    `zero_init_residual=True`; Fixup, SkipInit and ReZero do the same), or scale each branch down,
    e.g. by 1/sqrt(number of blocks).

    References:
    Philipp et al. (arXiv 1712.05577), "k-dilution"; Goyal et al. (2017) on zero-initialised
    residual BatchNorm; Zhang, Dauphin & Ma, "Fixup" (ICLR 2019); De & Smith, "Batch normalization
    biases residual blocks towards the identity function" (NeurIPS 2020).
    """

    code = "GL403"
    name = "dominant-residual-branch"
    severity = "warning"
    summary = "residual branches larger than their skip (dilution k < 1)"
    options = {"dilution": DOMINANT_DILUTION, "fraction": 0.25, "gsc": 10.0}
    what_if = ("zero-residual",)
    triggers = (ex.dominant_branch_resnet,)
    clean = (ex.diluted_resnet, ex.residual_mlp)

    def check(self, report: ModelReport):
        blocks = report.residual_blocks
        bad = [b for b in blocks if b.dilution is not None and b.dilution < self.opts["dilution"]]
        if not bad:
            return
        gsc = report.summary.gsc_max
        severity = ("warning" if len(bad) >= self.opts["fraction"] * len(blocks)
                    and gsc is not None and gsc >= self.opts["gsc"] else "info")
        worst = min(bad, key=lambda b: b.dilution)
        names = ", ".join(b.merge for b in bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else "")
        yield self.finding(
            report, layer=report.layer(worst.merge), severity=severity, value=worst.dilution,
            threshold=self.opts["dilution"],
            message=f"in {len(bad)} of {len(blocks)} residual blocks the branch is larger than the skip "
                    f"(dilution k as low as {fmt(worst.dilution)} at {worst.merge}): {names}; "
                    f"GSC max {fmt(gsc)}, effective depth {fmt(report.summary.effective_depth)} of "
                    f"{report.summary.compositional_depth}",
            recommendation=f"Make the skips dominate: {residual_fix(report)}.",
        )


class BiasBeforeNorm(Rule):
    """What it does:
    Flags layers whose bias feeds straight into a BatchNorm (or an InstanceNorm, or a GroupNorm
    with one channel per group), which subtracts each channel's mean over the batch.

    Why is this bad?
    The norm removes any per-channel constant, so the bias cancels exactly: it is a parameter that
    can never change the output, costs memory and optimiser state, and makes weight decay and
    parameter counts misleading. It does not hurt the gradient scale, hence `info`. A LayerNorm
    normalises over features instead, so a per-feature bias before it is not cancelled and is not
    flagged.

    Defaults: `info` for every such layer.

    Example:
    `nn.Conv2d(64, 64, 3, padding=1)` followed by `nn.BatchNorm2d(64)`.

    How to fix:
    Construct the layer with `bias=False`, as torchvision's ResNets do.

    References:
    Ioffe & Szegedy, "Batch normalization" (ICML 2015), section 3.2: the bias "can be ignored".
    """

    code = "GL404"
    name = "bias-before-norm"
    severity = "info"
    summary = "a bias that the following batch normalisation cancels exactly"
    triggers = (ex.conv_bias_before_batchnorm,)
    clean = (ex.conv_without_bias_before_batchnorm, ex.linear_bias_before_layernorm)

    def check(self, report: ModelReport):
        bad = [x for x in depth_layers(report) if x.bias_cancelled_by]
        if not bad:
            return
        names = ", ".join(f"{x.name} -> {x.bias_cancelled_by}" for x in bad[:4])
        names += f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""
        yield self.finding(
            report, layer=bad[0], value=float(len(bad)),
            message=f"{len(bad)} layer bias{'es' if len(bad) > 1 else ''} cancelled by the batch "
                    f"normalisation right after: {names}",
            recommendation=f"Construct {'these layers' if len(bad) > 1 else bad[0].name} with bias=False.",
        )
