"""GL302 identical-initial-weights: layers start with identical weights (deep copies of one layer)."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule, depth_layers
from .examples import randn, seeded_torch


def cloned_layers_model():
    """Four blocks made by copy.deepcopy of one block (as nn.TransformerEncoder does): identical weights."""
    import copy

    torch, nn = seeded_torch()
    block = nn.Sequential(nn.Linear(32, 32), nn.LayerNorm(32), nn.ReLU())
    model = nn.Sequential(*(copy.deepcopy(block) for _ in range(4)), nn.Linear(32, 4))
    return model, (randn(64, 32),)


def weight_tied_model():
    """One Linear applied three times (weight tying): the same parameter, not a copy."""
    torch, nn = seeded_torch()

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(32, 32)
            self.head = nn.Linear(32, 4)

        def forward(self, x):
            for _ in range(3):
                x = torch.relu(self.fc(x))
            return self.head(x)

    return Tied(), (randn(64, 32),)


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

    Defaults: `info` for any group of two or more layers whose weights are equal value for value: the
    copies do drift apart, and on the project's trainability benchmark a 6-layer `nn.TransformerEncoder`
    (identical layers, pre- or post-norm) learns the recall task to loss 0.006, as well as any net there.
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
    severity = "info"
    summary = "layers start with identical weights (deep copies of one layer)"
    what_if = ("orthogonal",)
    triggers = (cloned_layers_model,)
    clean = (weight_tied_model, ex.residual_mlp)

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
