"""``GradlintCallback``: ``gradlint.track`` inside a PyTorch Lightning ``Trainer``.

    from gradlint.callbacks.lightning import GradlintCallback
    callback = GradlintCallback(every=100, module="net", plot="track.png")
    lightning.Trainer(callbacks=[callback], ...).fit(module, loader)

At each step whose ``trainer.global_step`` is a multiple of ``every`` the probe runs on the inputs of the
next forward of ``module`` (an attribute path inside the LightningModule, such as "net"; default: the
LightningModule itself, whose ``forward`` its ``training_step`` must then call), just before that forward
runs.  Importing this module imports Lightning (``lightning``, else ``pytorch_lightning``).
"""

from __future__ import annotations

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    from pytorch_lightning import Callback

from . import Schedule


class GradlintCallback(Callback, Schedule):
    """Track a LightningModule (or its submodule ``module``) during ``fit``.  Keywords: ``every``,
    ``module``, ``save`` (a JSON path), ``plot`` (a .png or .svg path), ``rules`` and the probe settings
    of ``gradlint.track``."""

    def __init__(self, every: int = 100, *, module: str | None = None, **options):
        Schedule.__init__(self, every, **options)
        self.module = module

    def on_train_start(self, trainer, pl_module):
        self.start(pl_module.get_submodule(self.module) if self.module else pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before_step(trainer.global_step)

    def on_train_end(self, trainer, pl_module):
        self.end()
