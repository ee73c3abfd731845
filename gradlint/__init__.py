"""gradlint: a linter for PyTorch model architectures, after Philipp, Song & Carbonell (arXiv 1712.05577)."""

__version__ = "0.1.0"

from .errors import GradlintError  # noqa: E402
from .report import Finding, ModelReport, TargetResult  # noqa: E402

__all__ = ["Finding", "GradlintError", "Inputs", "ModelReport", "TargetResult", "lint", "sweep", "track",
           "__version__"]


def __getattr__(name: str):
    """``gradlint.lint`` and ``gradlint.track`` import torch on first use, so ``gradlint --help`` and
    ``gradlint rules`` stay fast."""
    if name in ("lint", "sweep"):
        from . import api

        return getattr(api, name)
    if name in ("track", "Tracker"):
        from . import tracking

        return getattr(tracking, name)
    if name == "Inputs":
        from .inputs import Inputs

        return Inputs
    raise AttributeError(f"module 'gradlint' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """``%load_ext gradlint``: the ``%gradlint MODEL[, INPUTS]`` line magic (``gradlint.notebook``)."""
    from .notebook import load_ipython_extension as load

    load(ipython)
