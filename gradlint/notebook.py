"""Notebooks: ``gradlint.lint(...)`` results display themselves (``TargetResult._repr_html_``), and after
``%load_ext gradlint`` the line magic ``%gradlint MODEL[, INPUTS]`` lints a model the notebook defines.

MODEL and INPUTS are Python expressions in the notebook's namespace: ``%gradlint net, x`` (a tensor),
``%gradlint net, (tokens, mask)`` (a tuple of positional inputs), or ``%gradlint net`` (inputs inferred
as on the command line).  The result is returned, so it displays as the cell's output and can be kept
(``r = %gradlint net, x``).
"""

from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    """Register ``%gradlint`` (IPython calls this on ``%load_ext gradlint``)."""

    def gradlint(line: str):
        """%gradlint MODEL[, INPUTS]: lint MODEL, probed with INPUTS (a tensor or a tuple; default: inferred)."""
        from . import lint

        if not line.strip():
            raise ValueError("usage: %gradlint MODEL[, INPUTS]  (e.g. %gradlint net, x)")
        values = eval(f"({line},)", ipython.user_ns)  # noqa: S307 - the notebook's own expressions
        if len(values) > 2:
            raise ValueError("usage: %gradlint MODEL[, INPUTS]: put several inputs in a tuple, "
                             "e.g. %gradlint net, (tokens, mask)")
        model, inputs = values[0], values[1] if len(values) > 1 else None
        if inputs is not None and not isinstance(inputs, (tuple, list, dict)):
            inputs = (inputs,)
        return lint(model, inputs)

    ipython.register_magic_function(gradlint, "line", "gradlint")
