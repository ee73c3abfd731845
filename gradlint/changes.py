"""The registry of changes to a model's initial weights (``gradlint.init``, ``--what-if``).

Plain data, no torch: the command line, what-if, the rules and the rule docs read it, and
``gradlint.init`` finds each change's planner through it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    name: str            # the --what-if value
    function: str        # the gradlint.init function that applies it in place
    description: str     # what it gives the model, in the words findings use
    planner: str         # the gradlint.init module whose plan(model, graph) computes it


CHANGES: dict[str, Change] = {c.name: c for c in (
    Change("orthogonal", "orthogonal_", "orthogonal initial weights", "orthogonal"),
    Change("looks-linear", "looks_linear_", "the looks-linear orthogonal initial state", "looks_linear"),
    Change("zero-residual", "zero_init_residual_", "zero-initialised residual branches", "zero_residual"),
)}


def function(change: str) -> str:
    return CHANGES[change].function


def description(change: str) -> str:
    return CHANGES[change].description
