"""gradlint.testing.assert_trainable: the gate for teams that lint in their own test suite."""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from gradlint.testing import assert_trainable

pytestmark = pytest.mark.probe
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from deep_mlp import deep_mlp  # noqa: E402
from residual_mlp import ResidualMLP  # noqa: E402


def test_a_healthy_model_passes_and_returns_its_result():
    result = assert_trainable(ResidualMLP(), torch.randn(64, 100))
    assert result.ok and result.report.summary.gsc_max < 10


def test_an_exploding_model_fails_with_the_text_report_of_its_findings():
    torch.manual_seed(0)
    with pytest.raises(AssertionError) as raised:
        assert_trainable(deep_mlp(), torch.randn(64, 100))
    message = str(raised.value)
    assert "ERROR" in message and "GL101 exploding-gradients" in message
    assert "fix: Add residual connections" in message
    assert "GL301" not in message   # only the offending findings (info is below fail_on="warning")
    assert "\x1b[" not in message   # no colour codes in a pytest failure


def test_fail_on_and_ignore_choose_what_is_offending():
    torch.manual_seed(0)
    model, x = deep_mlp(depth=30, width=64), torch.randn(64, 64)
    assert_trainable(model, x, fail_on="error")           # GL101 is a warning at depth 30
    with pytest.raises(AssertionError, match="GL401"):
        assert_trainable(model, x, ignore=["GL1"])       # the rest still offends
    result = assert_trainable(model, x, ignore=["GL1", "GL4"])
    assert {f.code for f in result.findings} >= {"GL101", "GL401"}   # ignored, not hidden from the result


def test_a_bad_fail_on_is_a_value_error():
    with pytest.raises(ValueError, match="fail_on must be one of"):
        assert_trainable(nn.Linear(4, 4), torch.randn(8, 4), fail_on="fatal")
