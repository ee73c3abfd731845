"""--what-if: the same model probed after a gradlint.init change, compared side by side."""

import importlib.util

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint.render import what_if_status
from reference_models import ResidualMLP, gaussian, mlp

pytestmark = pytest.mark.probe

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs gradlint[plot]")


def test_looks_linear_what_if_removes_the_explosion_of_deep_mlp(gradlint):
    run = gradlint("examples/deep_mlp.py", "--what-if", "looks-linear", "--format", "json")
    assert run.code == 1  # the verdict is the model's own, not the variant's
    (result,) = run.json()["results"]
    (w,) = result["what_if"]
    assert w["change"] == "looks-linear" and w["applied"] and w["reason"] is None
    before, after = result["summary"], w["summary"]
    assert before["explosion_rate"] > 1.15 and before["gsc_input"] > 1e3
    assert abs(after["explosion_rate"] - 1) < 0.01 and after["gsc_input"] < 2
    status = {s["code"]: s["status"] for s in w["finding_status"]}
    assert status["GL101"] == "gone"
    assert not [f for f in w["findings"] if f["code"] == "GL101"]
    # the model's own finding suggests the command that was just run
    gl101 = next(f for f in result["findings"] if f["code"] == "GL101")
    assert "`gradlint examples/deep_mlp.py:deep_mlp --what-if looks-linear`" in gl101["recommendation"]


def test_what_if_text_shows_before_and_after_side_by_side(gradlint):
    run = gradlint("examples/deep_mlp.py", "--what-if", "looks-linear", "--what-if", "zero-residual")
    out = run.stdout
    assert "what if: --what-if looks-linear" in out
    assert "not applicable: zero_init_residual_: no residual connections found" in out
    row = next(line for line in out.splitlines() if "explosion rate" in line).split()
    assert float(row[-2]) > 1.15 and float(row[-1]) == pytest.approx(1.0, abs=0.01)
    gl101 = next(line for line in out.splitlines() if line.strip().startswith("GL101 exploding-gradients"))
    assert gl101.split()[-2:] == ["error", "gone"]


def test_what_if_probes_a_copy_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = mlp(12, 32, init="he")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = gaussian(64, 32)
    result = gradlint.lint(model, x, what_if=("looks-linear", "orthogonal"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    again = gradlint.lint(model, x)
    assert again.report == result.report  # the base probe is unaffected by the variants
    assert [w.change for w in result.what_if] == ["looks-linear", "orthogonal"]
    assert all(w.applied and w.report is not None for w in result.what_if)


def test_orthogonal_what_if_fixes_the_vanishing_default_tanh_net_and_shows_the_tradeoff():
    torch.manual_seed(0)
    result = gradlint.lint(mlp(20, 100, nn.Tanh), gaussian(64, 100), what_if=("orthogonal",))
    codes = {f.code for f in result.findings}
    assert {"GL102", "GL201"} <= codes
    (w,) = result.what_if
    fate = {f.code: st for f, st in what_if_status(result.findings, w)}
    assert fate["GL102"] == fate["GL201"] == "gone"
    # keeping tanh's pre-activation scale at 1 is its chaotic phase: a mild explosion appears instead
    assert 1.05 < w.report.summary.explosion_rate < 1.12
    assert fate.get("GL101") == "new"


def test_zero_residual_what_if_makes_every_block_pass_through():
    torch.manual_seed(0)
    result = gradlint.lint(ResidualMLP(blocks=8, scale=1.0), gaussian(64, 100), what_if=("zero-residual",))
    (w,) = result.what_if
    assert all(b.branch_share > 0.01 for b in result.report.residual_blocks)
    assert all(b.branch_share == 0.0 and b.pass_through for b in w.report.residual_blocks)
    assert w.report.summary.effective_depth == 2.0  # only stem and head remain on every path
    assert len(w.changed) == 2 * 8  # weight and bias of the last Linear of each branch


def test_refused_change_is_reported_not_fatal():
    torch.manual_seed(0)
    result = gradlint.lint(mlp(6, 16, nn.Tanh), gaussian(64, 16), what_if=("looks-linear",))
    (w,) = result.what_if
    assert not w.applied and w.report is None
    assert "is not ReLU-family" in w.reason
    assert all(st == "n/a" for _, st in what_if_status(result.findings, w))


def test_unknown_change_is_an_input_error():
    with pytest.raises(gradlint.GradlintError, match="unknown what-if change"):
        gradlint.lint(mlp(2, 8), gaussian(8, 8), what_if=("fixup",))


@pytest.mark.parametrize("model, fits", [
    (lambda: mlp(4, 16, init="he"), ("orthogonal", "looks-linear")),
    (lambda: mlp(4, 15, init="he"), ("orthogonal",)),          # odd width: looks-linear refuses it
    (lambda: mlp(4, 16, nn.Tanh), ("orthogonal",)),
    (lambda: ResidualMLP(16, 3), ("orthogonal", "zero-residual")),
])
def test_applicable_changes_are_what_gradlint_init_accepts(model, fits):
    from gradlint.init import applicable

    torch.manual_seed(0)
    assert applicable(model()) == fits


def test_findings_suggest_only_a_change_that_applies():
    torch.manual_seed(0)
    even = gradlint.lint(mlp(40, 64, init="he"), gaussian(128, 64))
    odd = gradlint.lint(mlp(40, 63, init="he"), gaussian(128, 63))
    gl202 = {r: next(f for f in res.findings if f.code == "GL202") for r, res in (("even", even), ("odd", odd))}
    assert 'what_if=("looks-linear",)' in gl202["even"].recommendation
    assert "what_if" not in gl202["odd"].recommendation  # looks-linear needs even widths; nothing else fits GL202
    assert even.report.applicable_changes == ("orthogonal", "looks-linear")


def test_a_what_if_copy_is_judged_as_the_model_is():
    """One judging step: the copy's report lists the changes that still apply to it, and its findings
    suggest them, without a command (what-if changes are not combined on the command line)."""
    torch.manual_seed(0)
    result = gradlint.lint(mlp(40, 64, init="he"), gaussian(128, 64), what_if=("orthogonal",))
    (copy,) = result.what_if
    assert copy.report.applicable_changes == ("orthogonal", "looks-linear")
    suggesting = [f for f in copy.findings if f.code == "GL202"]
    assert suggesting, [f.code for f in copy.findings]
    for f in suggesting:
        assert f.recommendation.endswith("On top of this change, the looks-linear orthogonal initial state "
                                         "(gradlint.init.looks_linear_(model)) would apply as well.")
        assert "--what-if" not in f.recommendation and "what_if=" not in f.recommendation


def test_bad_plot_destination_fails_before_probing(gradlint, tmp_path):
    run = gradlint("examples/deep_mlp.py", "--plot", str(tmp_path / "fig.pdf"))
    assert run.code == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        f"gradlint: error: --plot {tmp_path / 'fig.pdf'}: unsupported file type; use one of .png, .svg"]


@needs_matplotlib
def test_plot_draws_every_model_and_variant(gradlint, tmp_path):
    out = tmp_path / "fig.svg"
    run = gradlint("examples/deep_mlp.py", "examples/residual_mlp.py", "--what-if", "looks-linear", "--plot", str(out))
    assert run.code == 1
    svg = out.read_text()
    for label in ("examples/deep_mlp.py:deep_mlp", "examples/deep_mlp.py:deep_mlp --what-if looks-linear",
                  "examples/residual_mlp.py:ResidualMLP"):
        assert f">{label}<" in svg
    assert "residual_mlp.py:ResidualMLP --what-if" not in svg  # refused for the residual net: nothing to draw


def test_a_what_if_on_a_model_only_hooks_capture_runs_on_the_hooks_tier():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
    try:
        from traced_fallback import DataDependent
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    result = gradlint.lint(DataDependent(), torch.randn(32, 16), what_if=("orthogonal",))
    assert result.report.trace == "hooks"
    (w,) = result.what_if
    assert w.applied and w.report is not None and w.report.trace == "hooks"
    assert {"a.weight", "b.weight", "out.weight"} <= set(w.changed)
    assert result.report.summary.mean_orthogonality_defect > 0.5
    assert w.report.summary.mean_orthogonality_defect < 1e-4   # the variant was probed, not the model again
    assert [x.name for x in w.report.layers if x.kind == "layer"] == ["a", "b", "out"]
