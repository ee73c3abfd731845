"""For teams that gate in their test suite: ``assert_trainable(model, example_inputs)``.

    def test_model_is_trainable():
        from gradlint.testing import assert_trainable
        assert_trainable(build_model(), torch.randn(64, 100), fail_on="warning", ignore=["GL404"])

The assertion's message is gradlint's text report of the offending findings, so pytest shows what
was measured and how to fix it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import replace

from .report import SEVERITY_RANK, TargetResult, at_or_above


def assert_trainable(model, example_inputs=None, *, fail_on: str = "warning", ignore: Iterable[str] = (),
                     **options) -> TargetResult:
    """Lint ``model`` (``options`` as ``gradlint.lint`` takes them) and raise ``AssertionError`` when a
    finding at or above ``fail_on`` remains after ``ignore`` (rule codes or prefixes such as "GL4").
    Returns the result when the model passes."""
    if fail_on not in SEVERITY_RANK:
        raise ValueError(f"fail_on must be one of {', '.join(SEVERITY_RANK)}, not {fail_on!r}")
    from .api import lint

    ignore = tuple(ignore)
    result = lint(model, example_inputs, **options)
    offending = tuple(f for f in at_or_above(result.findings, fail_on)
                      if not any(f.code.startswith(code) for code in ignore))
    if offending:
        raise AssertionError(report_text(replace(result, findings=offending)))
    return result


def report_text(result: TargetResult) -> str:
    """The text report of one result, without colour."""
    from rich.console import Console

    from .render.text import render

    sink = io.StringIO()
    render([result], Console(file=sink, width=120, no_color=True, highlight=False, force_terminal=False))
    return sink.getvalue()
