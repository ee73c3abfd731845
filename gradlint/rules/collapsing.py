"""What the collapse rules (GL201-GL205) share: which nonlinearities they judge, in which order, and how
a statistic's levels are read."""

from __future__ import annotations

from dataclasses import replace

from ..report import Layer, ModelReport
from .base import COLLAPSED_SPREAD, Rule, cut, disconnected, nonlinearities


def judged(report: ModelReport) -> list[Layer]:
    """The nonlinearities the collapse rules judge: links of the depth path, not gates.  A gate branch
    (squeeze-excitation's pool -> fc -> act -> fc -> sigmoid, a GLU's gate, the tanh inside a GELU
    formula) multiplies another path: on Gaussian probe inputs its squeeze path sees a near-constant
    domain, and its sigmoid is linear on the narrow range it modulates over, by design.  A nonlinearity
    whose input is exactly zero sits on a dead branch (GL206), not in a collapsed domain; and when the
    output does not depend on the input (GL103), the layers after the cut see a constant by consequence."""
    at = cut(report) if disconnected(report) else None
    return [x for x in nonlinearities(report) if not x.gate and not x.zero_input
            and not (at is not None and x.depth is not None and at.depth is not None and x.depth < at.depth)]


def count_text(layers: list[Layer], total: int) -> str:
    return f"{len(layers)} of {total} nonlinearities"


def below(rule: Rule, layers: list[Layer], stat: str):
    """Layers whose ``stat`` is under the rule's warning level, the worst one, and its (severity, threshold)."""
    bad = [x for x in layers if getattr(x, stat) is not None and getattr(x, stat) < rule.opts["warning"]]
    if not bad:
        return None
    worst = min(bad, key=lambda x: getattr(x, stat))
    level = "error" if getattr(worst, stat) < rule.opts["error"] else "warning"
    return bad, worst, level, rule.opts[level]


def above(layers: list[Layer], stat: str, level: float) -> tuple[list[Layer], Layer] | None:
    """Layers whose ``stat`` exceeds ``level``, and the worst one."""
    bad = [x for x in layers if getattr(x, stat) is not None and getattr(x, stat) > level]
    return (bad, max(bad, key=lambda x: getattr(x, stat))) if bad else None


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
