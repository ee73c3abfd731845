"""GL102 vanishing-gradients: the Gradient Scale Coefficient shrinks far below 1 toward the input."""

from __future__ import annotations

from ..report import Layer, ModelReport, Shift
from . import examples as ex
from .base import Rule, disconnected, fmt, grade, gsc_steps, spine_points


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
        if not body or disconnected(report):  # not a weak dependence: none at all (GL103)
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
