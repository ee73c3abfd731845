"""``GradlintCallback``: ``gradlint.track`` inside a Hugging Face ``Trainer``.

    from gradlint.callbacks.huggingface import GradlintCallback
    callback = GradlintCallback(every=100, save="track.json", plot="track.png")
    Trainer(model, args, train_dataset=..., callbacks=[callback]).train()
    print(callback.tracker.report())

At each step whose ``state.global_step`` is a multiple of ``every`` the probe runs on that step's first
batch, just before the Trainer's forward, with the ``labels`` (and the Trainer's ``num_items_in_batch``) left out
and the ``logits`` as the output the GSC is relative to.  Importing this module imports transformers.
"""

from __future__ import annotations

from transformers import TrainerCallback

from . import Schedule


class GradlintCallback(TrainerCallback, Schedule):
    """Track the model the Trainer trains.  Keywords: ``every``, ``save`` (a JSON path), ``plot`` (a .png
    or .svg path), ``drop`` (inputs left out; by default ``labels`` and ``num_items_in_batch``, which only
    make the loss), ``rules`` and the probe settings of ``gradlint.track`` (``model_output`` defaults to
    "logits")."""

    def __init__(self, every: int = 100, *, drop=("labels", "num_items_in_batch"), model_output: str | None = "logits",
                 **options):
        Schedule.__init__(self, every, drop=drop, model_output=model_output, **options)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start(model)

    def on_step_begin(self, args, state, control, **kwargs):
        self.before_step(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.end()
