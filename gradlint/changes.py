"""The changes to a model's initial weights that gradlint knows (``gradlint.init``, ``--what-if``).

Plain data, no torch: the rules, the docs and the command line read it as well as ``gradlint.init``.
"""

from __future__ import annotations

# change -> (gradlint.init function, what it gives the model, in the words findings use)
CHANGES: dict[str, tuple[str, str]] = {
    "orthogonal": ("orthogonal_", "orthogonal initial weights"),
    "looks-linear": ("looks_linear_", "the looks-linear orthogonal initial state"),
    "zero-residual": ("zero_init_residual_", "zero-initialised residual branches"),
}


def function(change: str) -> str:
    return CHANGES[change][0]


def description(change: str) -> str:
    return CHANGES[change][1]
