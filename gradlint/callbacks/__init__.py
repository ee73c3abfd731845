"""Training-loop callbacks that run ``gradlint.track`` for you: ``gradlint.callbacks.huggingface.GradlintCallback``
(a ``transformers.TrainerCallback``) and ``gradlint.callbacks.lightning.GradlintCallback`` (a Lightning
``Callback``).  Each imports its library when imported; this package imports neither.

Both share ``Schedule``: at the start of training it makes the tracker; at the start of each step whose
number is a multiple of ``every`` it arms the tracker (``Tracker.arm``), so the model's next forward with
gradients on (the loop's own, on the loop's own batch) runs the probe first; at the end it writes the
JSON and the plot when asked for them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


class Schedule:
    """The part of a callback that does not depend on its library."""

    def __init__(self, every: int = 100, *, save: str | os.PathLike | None = None,
                 plot: str | os.PathLike | None = None, drop: Sequence[str] = (), rules=None, **settings):
        from ..tracking import checked

        checked(every, settings)  # wrong arguments fail here, not when training starts
        self.every, self.save_to, self.plot_to, self.drop = every, save, plot, tuple(drop)
        self.rules, self.settings = rules, settings
        self.tracker = None
        self._last: int | None = None    # the step last armed (gradient accumulation starts a step several times)

    def start(self, model) -> None:
        from ..tracking import Tracker

        self.tracker = Tracker(model, self.every, rules=self.rules, **self.settings)

    def before_step(self, step: int) -> None:
        if self.tracker is not None and step % self.every == 0 and step != self._last:
            self._last = step
            self.tracker.arm(step, drop=self.drop)

    def end(self) -> None:
        if self.tracker is None:
            return
        self.tracker.disarm()
        if self.save_to:
            self.tracker.save(self.save_to)
        if self.plot_to:
            self.tracker.plot(self.plot_to)
