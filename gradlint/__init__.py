"""gradlint: a linter for PyTorch model architectures, after Philipp, Song & Carbonell (arXiv 1712.05577)."""

__version__ = "0.1.0"

from .api import lint  # noqa: E402
from .errors import GradlintError  # noqa: E402
from .report import Finding, ModelReport, TargetResult  # noqa: E402

__all__ = ["Finding", "GradlintError", "ModelReport", "TargetResult", "lint", "__version__"]
