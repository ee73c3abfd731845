"""GL3xx: initialisation and orthogonality."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule, depth_layers, fmt, pathology, span


class NonOrthogonalInit(Rule):
    """What it does:
    When the model explodes or collapses (see GL1xx, GL2xx), reports that its depth-bearing weights
    are far from orthogonal: the orthogonality defect (coefficient of variation of the squared
    singular values) is large.

    Why is this bad?
    The paper's first recommendation is to train from an orthogonal initial state: a network that
    starts as a composition of orthogonal maps has GSC 1 at every depth and no collapsed domain, so
    depth stops being a liability at the start of training. i.i.d. Gaussian or uniform weights have
    a defect of about 1 when square.

    Defaults: `info`, when the mean defect is above 0.3 and the model also shows a pathology at
    warning level (a GL1xx or GL2xx finding at warning or above). Orthogonal weights alone do not remove the explosion caused by batch norm; the
    message is a pointer, not a diagnosis.

    Example:
    A 30-layer `Linear -> BatchNorm1d -> ReLU` MLP with He (Gaussian) weights: it explodes, and
    every weight has defect ~1.

    How to fix:
    `torch.nn.init.orthogonal_(layer.weight, gain=...)` on each depth-bearing layer; for ReLU nets the
    looks-linear construction `[[A, -A], [-A, A]]` makes the whole network an orthogonal linear map at
    initialisation.

    References:
    Philipp et al. (arXiv 1712.05577), "orthogonal initial state"; Saxe et al. (2014); Balduzzi et al.
    (ICML 2017); Xiao et al. (ICML 2018) for convolutions.
    """

    code = "GL301"
    name = "non-orthogonal-initial-state"
    severity = "info"
    summary = "weights are far from orthogonal in a model that explodes or collapses"
    options = {"info": 0.3}
    what_if = ('looks-linear', 'orthogonal')
    triggers = (ex.batch_relu_mlp,)
    clean = (ex.orthogonal_batch_relu_mlp, ex.residual_mlp)
    after_others = True

    def check_after(self, report: ModelReport, earlier):
        mean = report.summary.mean_orthogonality_defect
        if mean is None or mean <= self.opts["info"] or not pathology(earlier):
            return
        layers = [x for x in depth_layers(report) if x.orthogonality_defect is not None
                  and x.orthogonality_defect > self.opts["info"]]
        worst = max(layers, key=lambda x: x.orthogonality_defect)
        yield self.finding(
            report, layer=worst, value=mean, threshold=self.opts["info"],
            message=f"mean weight orthogonality defect is {fmt(mean)} over {len(depth_layers(report))} layers "
                    f"(worst {fmt(worst.orthogonality_defect)} at {worst.name}; 0 is orthogonal)",
            recommendation=f"Start from an orthogonal initial state: torch.nn.init.orthogonal_(weight) on "
                           f"{span(layers)} (gain to keep each nonlinearity's pre-activation scale); for ReLU "
                           "nets, the looks-linear construction makes the network exactly orthogonal at init.",
        )


class IdenticalInitialWeights(Rule):
    """What it does:
    Flags depth-bearing layers that start with exactly the same weights as another layer, through
    different parameters (copies, not weight tying).

    Why is this bad?
    `copy.deepcopy` of an initialised layer, and containers built that way (`nn.TransformerEncoder`
    and `nn.TransformerDecoder` deep-copy the layer they are given), start every copy from the same
    point. Each copy is then the same random function, and the network's initial state is far less
    random than its parameter count suggests; the copies only drift apart through the different
    inputs they see. Tied weights (one module applied several times, or one parameter shared) are
    intended and not flagged.

    Defaults: `warning` for any group of two or more layers whose weights are equal value for value.
    Constant weights (e.g. zero-initialised layers) are not compared.

    Example:
    `nn.Sequential(*[copy.deepcopy(block) for _ in range(4)])`, or
    `nn.TransformerEncoder(nn.TransformerEncoderLayer(256, 8), num_layers=6)`.

    How to fix:
    Re-initialise each copy (`for layer in encoder.layers: layer.apply(init_fn)`), build each block
    with its own constructor call, or start from an orthogonal initial state drawn per layer
    (`gradlint.init.orthogonal_(model)`).

    References:
    Philipp et al. (arXiv 1712.05577), section 6 (the initial state); PyTorch issues #72253
    "Transformer Initialization" and #86274 "TransformerEncoder/TransformerDecoder has same initial
    parameters for all layers".
    """

    code = "GL302"
    name = "identical-initial-weights"
    severity = "warning"
    summary = "layers start with identical weights (deep copies of one layer)"
    what_if = ("orthogonal",)
    triggers = (ex.cloned_layers_model,)
    clean = (ex.weight_tied_model, ex.residual_mlp)

    def check(self, report: ModelReport):
        layers = depth_layers(report)
        groups: dict[str, list] = {}
        for x in layers:
            if x.copy_of is not None:
                groups.setdefault(x.copy_of, []).append(x)
        for label, copies in groups.items():
            first = next((x for x in layers if (x.weight or x.name) == label), None)
            same = ([first] if first is not None else []) + copies
            names = ", ".join(x.name for x in same[:6]) + (f" and {len(same) - 6} more" if len(same) > 6 else "")
            yield self.finding(
                report, layer=same[0], value=float(len(same)), threshold=2.0,
                message=f"{len(same)} layers start with identical {same[0].op} weights: {names}",
                recommendation="Initialise each copy separately (copy.deepcopy and nn.TransformerEncoder clone "
                               "one initialised layer): re-run the init on every copy, e.g. "
                               "`for layer in model.layers: layer.apply(init_fn)`, or construct each block "
                               "with its own call.",
            )
