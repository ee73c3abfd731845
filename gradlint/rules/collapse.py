"""GL2xx: collapsing domain, measured on the pre-activation of every nonlinearity."""

from __future__ import annotations

from dataclasses import replace

from ..report import Layer, ModelReport
from . import examples as ex
from .base import COLLAPSED_SPREAD, Rule, at_least, at_most, collapsed, fmt, nonlinearities


def judged(report: ModelReport) -> list[Layer]:
    """The nonlinearities the collapse rules judge: links of the depth path, not gates.  A gate branch
    (squeeze-excitation's pool -> fc -> act -> fc -> sigmoid, a GLU's gate, the tanh inside a GELU
    formula) multiplies another path: on Gaussian probe inputs its squeeze path sees a near-constant
    domain, and its sigmoid is linear on the narrow range it modulates over, by design."""
    return [x for x in nonlinearities(report) if not x.gate]


def _count(layers: list[Layer], total: int) -> str:
    return f"{len(layers)} of {total} nonlinearities"


def _below(rule: Rule, layers: list[Layer], stat: str):
    """Layers whose ``stat`` is under the rule's warning level, the worst one, and its (severity, threshold)."""
    bad = [x for x in layers if getattr(x, stat) is not None and getattr(x, stat) < rule.opts["warning"]]
    if not bad:
        return None
    worst = min(bad, key=lambda x: getattr(x, stat))
    level = "error" if getattr(worst, stat) < rule.opts["error"] else "warning"
    return bad, worst, level, rule.opts[level]


class CollapseRule(Rule):
    """A collapse rule judges the nonlinearities on the data path's own layers first; only when none of
    those is at fault does it look at the ones a residual skip carries the data past (inside a block's
    branch, or reading a block's sum), then at those on side inputs' paths (a time embedding's MLP,
    adaLN's SiLU of the conditioning), and then as a remark: the skip keeps the network trainable
    whatever the branch's nonlinearities do at initialisation (a weight-normed TCN whose branches start
    one-signed on its non-negative stream reaches 97% on sequential digits, as with zero biases), and a
    conditioning path modulates the data path rather than composing with it (DiT applies one SiLU to
    its conditioning vector in each of its blocks, side by side, not in a row)."""

    def judge(self, report: ModelReport, layers: list[Layer]):
        raise NotImplementedError

    def collapse_level(self) -> float:
        """The relative spread below which GL201 judges a layer (as configured): the other collapse rules
        leave those layers to it, since their statistics are then degenerate."""
        gl201 = self.peers.get("GL201")
        return gl201.opts["warning"] if gl201 is not None else COLLAPSED_SPREAD

    def check(self, report: ModelReport):
        layers = judged(report)
        found = list(self.judge(report, [x for x in layers if not x.bypassed and x.side is None]))
        if found:
            yield from found
            return
        for f in self.judge(report, [x for x in layers if x.bypassed and x.side is None]):
            yield replace(f, severity="info", threshold=None,
                          message=f"{f.message}; all inside residual branches or reading residual sums: the skips "
                                  "carry the data past them (a remark)")
            return
        for f in self.judge(report, [x for x in layers if x.side is not None]):
            yield replace(f, severity="info", threshold=None,
                          message=f"{f.message}; all on the paths of side inputs (timesteps, labels): they modulate "
                                  "the data path and are no links of it (a remark)")


class DomainCollapse(CollapseRule):
    """What it does:
    Flags nonlinearities whose pre-activations are nearly the same for every input: the relative
    spread (mean per-unit std over samples, divided by the RMS of the pre-activation) is near 0.

    Why is this bad?
    If every input reaches a nonlinearity at almost the same point, the layer computes almost the
    same output for every input: the information that distinguishes inputs is lost, and the layers
    above are pseudo-linear on a tiny domain. PyTorch's default `nn.Linear` init shrinks the signal
    each layer until the uniform biases dominate; then every unit sees a constant.

    Defaults: `warning` below 0.1, `error` below 0.01 (default-init 20-layer ReLU and tanh MLPs: < 1e-4;
    He-init ReLU: 0.30; batch-norm nets: 1.0). Stock nets: torchvision's vgg19 without BN reaches 0.077
    at its first classifier ReLU (warning: VGG-19 without BN is hard to train from scratch, which is
    why Simonyan & Zisserman initialised it from a shallower net); every other zoo model stays above
    0.1 once gates are left out. Gates (a nonlinearity on a branch that multiplies another path, such
    as squeeze-excitation) are not judged: their squeeze path pools each image to one vector, which on
    Gaussian probe images is nearly the same for every sample (RegNetY's SE: 0.03).

    Example:
    `nn.Sequential(*[nn.Sequential(nn.Linear(100, 100), nn.ReLU()) for _ in range(20)])` with the
    default init.

    How to fix:
    A variance-preserving init with zero biases, normalisation before the nonlinearity, or residual
    connections.

    References:
    Philipp et al. (arXiv 1712.05577), "collapsing domain problem".
    """

    code = "GL201"
    name = "collapsing-domain"
    severity = "error"
    summary = "pre-activations are nearly identical across inputs (relative spread near 0)"
    options = {"warning": COLLAPSED_SPREAD, "error": 0.01}
    what_if = ('looks-linear', 'orthogonal')
    triggers = (ex.default_init_relu_mlp,)
    clean = (ex.he_relu_mlp, ex.batch_relu_mlp, ex.squeeze_excitation_net)

    def judge(self, report: ModelReport, layers: list[Layer]):
        # a ReLU of a non-negative input (a ReLU after a residual sum of ReLU outputs) is the identity:
        # how much its input varies is the business of the nonlinearities that made it
        layers = [x for x in layers if not x.rectified]
        hit = _below(self, layers, "relative_spread")
        if hit is None:
            return
        bad, worst, severity, threshold = hit
        yield self.finding(
            report, layer=worst, severity=severity, value=worst.relative_spread, threshold=threshold,
            message=f"relative spread of the pre-activation is {fmt(worst.relative_spread)} at {worst.name}; "
                    f"{_count(bad, len(layers))} see a nearly constant input (first at {bad[0].name})",
            recommendation="Use a variance-preserving init with zero biases (e.g. nn.init.kaiming_normal_ / "
                           "xavier_normal_ and nn.init.zeros_ on the bias), normalise before the nonlinearity, "
                           "or add residual connections.",
        )


class SignDiversityCollapse(CollapseRule):
    """What it does:
    Flags ReLU-family nonlinearities whose units see pre-activations of one sign on almost every
    sample: sign diversity min(P, N) / (P + N), averaged over units, near 0.

    Why is this bad?
    A ReLU unit that is always positive is the identity, one that is always negative is zero: either
    way the layer is (pseudo-)linear and adds no representational power. Plain ReLU stacks with He
    init keep their scale but lose sign diversity toward the output.

    Defaults: `warning` below 0.1, `error` below 0.005. The noise floor for symmetric pre-activations
    is 0.5 - 1/sqrt(2 pi B): 0.45 at B = 64, so 0.1 is far outside noise; layers with fewer than
    16 samples per unit (`min-samples`) are not judged. Measured: the 50-layer He-init ReLU MLP
    0.007, layer-norm-ReLU 0.015-0.024, default-init ReLU 0.05 (unhealthy); the lowest healthy
    value is 0.13-0.18, the classifier ReLU of a VGG-BN net (non-centred features into a small
    Linear), then 0.31 in a BN ResNet-18 and 0.40 in a residual MLP. Stock nets: torchvision's vgg19
    without BN reaches 0.084 at `features.20` (warning: plain ReLU stacks lose sign diversity with
    depth, and VGG-19 without BN is hard to train from scratch); no other zoo model goes below 0.1.
    Layers whose domain
    collapsed (GL201) are left to that rule, and so is a ReLU whose input has no negative value at
    all (a ReLU of a ReLU output, e.g. after a zero-initialised residual branch): it is the
    identity by construction, not a collapsed domain.

    Example:
    A 40-layer `Linear -> ReLU` MLP with `kaiming_normal_` weights and zero biases.

    How to fix:
    Add residual connections, normalise before the ReLU, or start from the looks-linear orthogonal
    initial state.

    References:
    Philipp et al. (arXiv 1712.05577), Fig. 1C "sign diversity"; Balduzzi et al., "The shattered
    gradients problem" (ICML 2017).
    """

    code = "GL202"
    name = "sign-diversity-collapse"
    severity = "warning"
    summary = "ReLU units see one sign on almost every sample (pseudo-linear)"
    options = {"warning": 0.1, "error": 0.005, "min-samples": 16}
    what_if = ('looks-linear',)
    triggers = (ex.he_relu_mlp,)
    clean = (ex.batch_relu_mlp, ex.looks_linear_mlp, ex.residual_mlp)

    def judge(self, report: ModelReport, layers: list[Layer]):
        layers = [x for x in layers if x.family == "relu" and x.sign_diversity is not None
                  and (x.samples or 0) >= self.opts["min-samples"] and not collapsed(x, self.collapse_level())
                  and not x.rectified]
        hit = _below(self, layers, "sign_diversity")
        if hit is None:
            return
        bad, worst, severity, threshold = hit
        yield self.finding(
            report, layer=worst, severity=severity, value=worst.sign_diversity, threshold=threshold,
            message=f"sign diversity is {fmt(worst.sign_diversity)} at {worst.name} (healthy: ~0.5); "
                    f"{_count(bad, len(layers))} with an uncollapsed domain are below {self.opts['warning']:g}, "
                    f"from {bad[0].name} on",
            recommendation="Add residual connections around these layers, or normalise before the ReLU; for a "
                           "plain ReLU net, a looks-linear orthogonal initial state keeps sign diversity at 0.5.",
        )


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
    (`warning`), `error` from 10 (`error`); shorter runs are not reported. Measured: the paper's 50-layer
    tanh MLP (LeCun init) has 47 in a row (scores 0.0079 down to 2e-5: error); layer-norm-tanh (0.054),
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
    options = {"pseudo-linear": 0.01, "warning": 3, "error": 10}
    what_if = ('looks-linear', 'orthogonal')
    triggers = (at_least(ex.lecun_tanh_mlp, "error"),)
    clean = (ex.layer_norm_tanh_mlp, ex.looks_linear_mlp, ex.squeeze_excitation_net,
             ex.pooler_tanh_head)

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
        severity = "error" if len(run) >= self.opts["error"] else "warning"
        worst = min(run, key=lambda x: x.nonlinearity)
        std = f", pre-activation std {fmt(worst.preact_std)}" if worst.family == "saturating" else ""
        total = sum(len(r) for r in runs)
        others = (f"; {total} of {len(sequence)} judged nonlinearities are below {self.opts['pseudo-linear']:g}"
                  if total > len(run) else "")
        what = (f"{len(run)} nonlinearities in a row are pseudo-linear ({run[0].name}..{run[-1].name}): their layers "
                f"compose into one linear map, {len(run)} layers of depth lost; lowest 1 - corr^2 = "
                f"{fmt(worst.nonlinearity)} at {worst.name} ({worst.op}){std}")
        yield self.finding(
            report, layer=worst, severity=severity, value=float(len(run)),
            threshold=float(self.opts[severity]),
            message=what + others,
            recommendation="Add residual connections or normalise before the nonlinearity; with fewer, wider "
                           "layers each nonlinearity keeps a larger domain.",
        )


class DeadUnits(CollapseRule):
    """What it does:
    Flags ReLU-family layers where many units are never positive on the probe batch.

    Why is this bad?
    A unit that is never positive passes no gradient: its weights never train. Sparsity of elements
    (half the entries zero) is normal; a unit that is zero for every sample is not.

    Defaults: `warning` when more than 25% (`warning` = 0.25) of a layer's units are never positive.
    Element sparsity is not death: a unit that is positive on 5% of samples looks dead on 8
    samples two times in three, so layers with fewer than 16 samples per unit (`min-samples`) are
    not judged. Measured: unhealthy plain ReLU nets 0.41-0.50; the worst healthy layer is a VGG-BN
    classifier ReLU, 0.15 at 64 samples (0.19-0.27 at 8). Layers whose domain collapsed (GL201),
    and ReLUs whose input is already non-negative, are left out.

    Example:
    A ReLU after a Linear whose biases are strongly negative.

    How to fix:
    Zero the biases at init, normalise before the ReLU, or use LeakyReLU.

    References:
    Lu et al., "Dying ReLU and initialization" (2019).
    """

    code = "GL204"
    name = "dead-units"
    severity = "warning"
    summary = "ReLU units that are never positive on the probe batch"
    options = {"warning": 0.25, "min-samples": 16}
    what_if = ('looks-linear',)
    triggers = (ex.dead_relu_layer,)
    clean = (ex.shallow_mlp, ex.residual_mlp, ex.batch_relu_mlp)

    def judge(self, report: ModelReport, layers: list[Layer]):
        bad = [x for x in layers if x.dead_fraction is not None
               and (x.samples or 0) >= self.opts["min-samples"] and x.dead_fraction > self.opts["warning"]
               and not collapsed(x, self.collapse_level()) and not x.rectified]
        if not bad:
            return
        worst = max(bad, key=lambda x: x.dead_fraction)
        yield self.finding(
            report, layer=worst, value=worst.dead_fraction, threshold=self.opts["warning"],
            message=f"{worst.dead_fraction:.0%} of the units of {worst.name} are never positive on "
                    f"{worst.samples} samples ({len(bad)} layers above {self.opts['warning']:.0%})",
            recommendation="Zero the biases at init, normalise before the ReLU, or add residual connections.",
        )


class SaturatedUnits(CollapseRule):
    """What it does:
    Flags tanh, sigmoid and hardtanh layers where many units are saturated (flat part of the
    function) on more than 99% of samples.

    Why is this bad?
    A saturated unit passes almost no gradient and outputs a near-constant.

    Defaults: `warning` when more than 10% of a layer's units are saturated.

    Example:
    `nn.Tanh()` after a `Linear` with weight std 3/sqrt(fan_in).

    How to fix:
    Scale the weights down (xavier_normal_ or orthogonal_ with gain 1), or normalise before the
    nonlinearity.

    References:
    Glorot & Bengio (2010); Philipp et al. (arXiv 1712.05577).
    """

    code = "GL205"
    name = "saturated-units"
    severity = "warning"
    summary = "tanh/sigmoid units saturated on almost every sample"
    options = {"warning": 0.1}
    what_if = ('orthogonal',)
    triggers = (ex.saturated_tanh_layer,)
    clean = (ex.lecun_tanh_mlp, ex.layer_norm_tanh_mlp)

    def judge(self, report: ModelReport, layers: list[Layer]):
        bad = [x for x in layers if x.saturated_fraction is not None
               and x.saturated_fraction > self.opts["warning"]]
        if not bad:
            return
        worst = max(bad, key=lambda x: x.saturated_fraction)
        yield self.finding(
            report, layer=worst, value=worst.saturated_fraction, threshold=self.opts["warning"],
            message=f"{worst.saturated_fraction:.0%} of the units of {worst.name} ({worst.op}) are saturated on "
                    f">99% of samples (pre-activation std {fmt(worst.preact_std)}; {len(bad)} layers affected)",
            recommendation="Scale the incoming weights down (xavier_normal_ or orthogonal_ with gain 1) or "
                           "normalise before the nonlinearity.",
        )
