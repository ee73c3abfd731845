"""The words gradlint's modules share, defined once and importable without torch: node kinds and
nonlinearity families, capture tiers, severities, probe dtypes, the rule-code grammar, and the report
figures that several renderers show side by side.  The op table (``ops.py``) says which torch op is
which kind; everything else names kinds, tiers and figures through this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --------------------------------------------------------------------------- node kinds and families

# Measured kinds get statistics and a gradient; the others are named so that walks over the graph
# (structure, init planning, structure facts) can tell what they may step through.
INPUT, LAYER, NONLINEARITY, NORM, EMBEDDING, MERGE = "input", "layer", "nonlinearity", "norm", "embedding", "merge"
DROPOUT, VIEW, RESHAPE, POOL, SCALE, SHAPE, CONSTANT, OTHER, OPAQUE = (
    "dropout", "view", "reshape", "pool", "scale", "shape", "constant", "other", "opaque")
CONCAT = "concat"   # a concatenation skip's join on the spine, as the report lists it
MEASURED = frozenset({INPUT, LAYER, NONLINEARITY, NORM, MERGE, EMBEDDING})

# Nonlinearity families: "relu" (piecewise linear through 0: sign diversity is what matters),
# "saturating" (tanh, sigmoid, hardtanh: the absolute pre-activation scale matters), "smooth" (the rest).
RELU, SATURATING, SMOOTH = "relu", "saturating", "smooth"

# --------------------------------------------------------------------------- capture tiers

FX, EXPORT, HOOKS = "fx", "export", "hooks"
# Every tier, in the order they are tried, with the label the report gives it; a tier's code is the Tier
# subclass of the same name in gradlint/capture/<name>.py.
TIERS = {FX: "torch.fx", EXPORT: "torch.export", HOOKS: "forward hooks"}

# --------------------------------------------------------------------------- severities

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)             # most severe first
SEVERITY_RANK = {INFO: 1, WARNING: 2, ERROR: 3}

# --------------------------------------------------------------------------- probe settings

DTYPES = ("float32", "float64", "float16", "bfloat16")
WHAT_IF = " --what-if "   # between a model's target and a change: the copy --what-if probes ("m.py:Net --what-if orthogonal")

# --------------------------------------------------------------------------- rule codes

_CODE = re.compile(r"^([A-Z]{1,8})([0-9]{3})$")
_PREFIX = re.compile(r"^[A-Z]{1,8}[0-9]{0,3}$")


def is_code(text: str) -> bool:
    """A full rule code: 1-8 capital letters, then three digits (``GL101``, ``ACME204``)."""
    return _CODE.match(text) is not None


def is_prefix(text: str) -> bool:
    """A code or a prefix of one (``GL``, ``GL1``, ``GL101``, ``ACME``)."""
    return _PREFIX.match(text) is not None


def letters(code: str) -> str:
    """The code's letters: GL101 -> GL."""
    return re.match(r"[A-Z]*", code).group()


def family(code: str) -> str:
    """The code's letters and first digit: GL901 -> GL9."""
    return re.match(r"[A-Z]*[0-9]?", code).group()


# --------------------------------------------------------------------------- report figures


@dataclass(frozen=True)
class Figure:
    """A model-level figure of the report's summary, as tables show it."""

    name: str            # the Summary field
    label: str           # how tables name it
    worse: str           # "higher", "lower" or "away from 1": which way the figure gets worse
    rate: bool = False   # shown with three decimals (a per-layer factor), not three significant figures
    baseline: bool = True    # recorded in a baseline (and shown before and after against it)
    what_if: bool = True     # shown before and after a --what-if change


FIGURES: tuple[Figure, ...] = (
    Figure("gsc_input", "GSC input", "away from 1"),   # an input side that stops depending on the input is worse too
    Figure("gsc_max", "GSC max", "higher"),
    Figure("explosion_rate", "explosion rate", "higher", rate=True),
    Figure("min_sign_diversity", "min sign diversity", "lower"),
    Figure("min_relative_spread", "min relative spread", "lower"),
    Figure("min_preact_std", "min pre-act std", "lower", baseline=False),
    Figure("effective_depth", "effective depth", "higher"),
    Figure("mean_orthogonality_defect", "mean orthogonality defect", "higher", baseline=False),
    Figure("parameter_coverage", "parameter coverage", "lower", what_if=False),
)
FIGURE = {f.name: f for f in FIGURES}
