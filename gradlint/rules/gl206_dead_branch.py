"""GL206 dead-branch: nonlinearities read a tensor that is exactly zero: a dead branch, not a collapse."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule, disconnected, nonlinearities
from .examples import randn, seeded_torch


def dead_edge_model():
    """A NAS-Bench-201-like residual cell, four times: beside the skip and a ReLU-Linear-LayerNorm edge,
    a second edge reads a node that only a 'none' op (multiply by zero) feeds."""
    torch, nn = seeded_torch()

    def edge():
        return nn.Sequential(nn.ReLU(), nn.Linear(32, 32), nn.LayerNorm(32))

    class Cells(nn.Module):
        def __init__(self):
            super().__init__()
            self.live = nn.ModuleList(edge() for _ in range(4))
            self.dead = nn.ModuleList(edge() for _ in range(4))
            self.head = nn.Linear(32, 4)

        def forward(self, x):
            for live, dead in zip(self.live, self.dead):
                x = x + live(x) + dead(x.mul(0.0))
            return self.head(x)

    return Cells(), (randn(32, 32),)


def zeroed_last_layer_model():
    """Residual blocks whose branch ends in a zero-initialised Linear followed by a squeeze-excitation
    gate, as timm's NF-ResNets (zero_init_last) build them: the gate reads zeros at init, from a weight
    that training moves at its first step."""
    torch, nn = seeded_torch()

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(32, 32), nn.Linear(32, 32)
            self.se1, self.se2 = nn.Linear(32, 8), nn.Linear(8, 32)
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)
            nn.init.zeros_(self.se1.bias)

        def forward(self, x):
            h = self.fc2(torch.relu(self.fc1(x)))
            return x + h * torch.sigmoid(self.se2(torch.relu(self.se1(h))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(*(Block() for _ in range(4)))
            self.head = nn.Linear(32, 4)

        def forward(self, x):
            return self.head(self.blocks(x))

    return Net(), (randn(32, 32),)


class DeadBranch(Rule):
    """What it does:
    Reports nonlinearities whose input is exactly zero on every sample of the probe batch: they sit on
    a dead branch. The collapse rules (GL201-GL205) leave them alone: a zero input is not a collapsed
    domain, and the branch does not limit what the rest of the network can learn.

    Why is this bad?
    It is not a training defect as long as other paths carry the data (when none does, GL103 says so).
    The branch adds nothing to the output at initialisation and the layers it feeds get no weight
    gradient, so it costs compute and parameters only. In NAS-Bench-201, 2,120 of the 15,284
    connected cells have a convolution reading an intermediate node that only 'none' edges feed;
    many of them train above 90% on CIFAR-10. Zeros that come only from zero-initialised layers (a
    zeroed last layer of a residual branch, as NF-ResNets and `zero_init_residual` build it, feeding a
    squeeze-excitation gate) are not reported: training moves those weights at its first step, so the
    branch comes alive (layer field `zero_from_init`).

    Example:
    `x + live(x) + dead(x.mul(0.0))` with `dead = Sequential(ReLU(), Linear(), LayerNorm())`.

    How to fix:
    Nothing, if the branch is meant to be empty; remove it to save its compute. If it should carry
    data, connect it to a live node.

    References:
    Dong & Yang, "NAS-Bench-201" (ICLR 2020).
    """

    code = "GL206"
    name = "dead-branch"
    severity = "info"
    summary = "nonlinearities read a tensor that is exactly zero: a dead branch, not a collapse"
    triggers = (dead_edge_model,)
    clean = (ex.shallow_mlp, ex.residual_mlp, ex.he_relu_mlp, zeroed_last_layer_model)

    def check(self, report: ModelReport):
        dead = [x for x in nonlinearities(report) if x.zero_input and not x.zero_from_init]
        if not dead or disconnected(report):
            return
        names = ", ".join(x.name for x in dead[:3]) + (f" and {len(dead) - 3} more" if len(dead) > 3 else "")
        yield self.finding(
            report, layer=dead[0],
            message=f"{len(dead)} nonlinearit{'y reads' if len(dead) == 1 else 'ies read'} a tensor that is exactly "
                    f"zero on every sample ({names}): {'its branch is' if len(dead) == 1 else 'their branches are'} "
                    "dead, not collapsed; the layers after them get no weight gradient and add nothing to the output",
            recommendation="Nothing to fix if the branch is meant to be empty (removing it saves its compute); "
                           "if it should carry data, connect it to a live node.",
        )
