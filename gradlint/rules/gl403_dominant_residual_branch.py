"""GL403 dominant-residual-branch: residual branches larger than their skip (dilution k < 1)."""

from __future__ import annotations

from ..report import DOMINANT_DILUTION, ModelReport
from . import examples as ex
from .base import Rule, fmt, residual_fix


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

    An add whose "skip" is exactly zero (NAS-Bench-201's 'none' edge beside a branch) is no residual
    block: the branch is the data path, and the block is not counted.

    Defaults: a block dominates below k = 0.9 (`dilution`). `warning` when at least a quarter of the
    blocks dominate (`fraction`) and the network's GSC reaches 500 (`gsc`, GL101's warning level: the
    dominant branches are then where the explosion comes from), else `info` when any block dominates.
    The level was 10 until NAS-Bench-201 (`benchmarks/nasbench201.py`): 80 of 1,000 connected cells
    had dominant branches in a quarter of their sums at GSC 10-400, and they train to 87.5-93.5% on
    CIFAR-10 (mean 91%, above the sample's 88%). Measured: paper ResNets with branches x0.1-x1 have k = 1.4-16 (no finding); a
    BN ResNet-18-like net with standard init has k = 0.71 in its first blocks and GSC 2-4 (info: it
    trains, and `zero_init_residual=True` still helps); post-norm blocks `LN(x + 4 f(x))` keep
    k ~ 0.35 in every block and reach GSC 23 after 16 blocks (info). The margin below 1 matters:
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
    options = {"dilution": DOMINANT_DILUTION, "fraction": 0.25, "gsc": 500.0}
    what_if = ("zero-residual",)
    triggers = (ex.dominant_branch_resnet,)
    clean = (ex.diluted_resnet, ex.residual_mlp)

    def check(self, report: ModelReport):
        # a "skip" that is exactly zero (NAS-Bench-201's 'none' edge beside a branch) carries nothing: the
        # add is no residual block, and the branch is the data path
        blocks = [b for b in report.residual_blocks if b.dilution != 0]
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
