"""The scaling sweep: fits, extrapolation and threshold crossings (pure, torch-free), and the --sweep command."""

import math

import pytest

from gradlint import scaling
from gradlint.rules.gl101_exploding_gradients import ExplodingGradients
from gradlint.scaling import Point

THRESHOLDS = {"GL101": {"info": 15.0, "warning": 200.0, "error": 1000.0},
              "GL202": {"warning": 0.1, "error": 0.005}, "GL201": {"warning": 0.1, "error": 0.01}}


def exploding(depth: int, rate: float = 1.2, sd0: float = 0.5, slope: float = -0.004) -> Point:
    """A family whose GSC grows exactly as 2 r^(depth + 1) and whose sign diversity falls on a line."""
    gsc = 2 * rate ** (depth + 1)
    figures = {"gsc_input": gsc, "gsc_max": gsc, "explosion_rate": rate, "effective_depth": depth + 1.0,
               "compositional_depth": depth + 1, "min_sign_diversity": sd0 + slope * depth, "min_relative_spread": 1.0}
    return Point(depth, figures, "info", ())


def test_a_depth_sweep_extrapolates_the_gsc_with_its_own_rate_and_crosses_where_the_law_says():
    sweep = scaling.analyse("depth", [exploding(d) for d in (6, 12, 24)], 50, THRESHOLDS)
    fits = {f.figure: f for f in sweep.fits}
    assert sweep.axis == "depth"
    assert fits["gsc_max"].form == "rate"
    assert fits["gsc_max"].predicted == pytest.approx(2 * 1.2 ** 51, rel=1e-9)
    assert fits["compositional_depth"].predicted == pytest.approx(51)
    assert fits["min_sign_diversity"].form == "linear"
    assert fits["min_sign_diversity"].predicted == pytest.approx(0.5 - 0.004 * 50)
    crossing = {(c.code, c.level): c for c in sweep.crossings}
    # 2 * 1.2^(d + 1) >= 200  <=>  d >= ln(100) / ln(1.2) - 1
    assert crossing[("GL101", "warning")].at == pytest.approx(math.log(100) / math.log(1.2) - 1, rel=0.011)
    assert crossing[("GL101", "info")].at == pytest.approx(math.log(7.5) / math.log(1.2) - 1, rel=0.011)
    # the line reaches 0.1 at depth 100 and 0.005 at 123.75
    assert crossing[("GL202", "warning")].at == pytest.approx(100, rel=0.011)
    assert crossing[("GL202", "error")].at == pytest.approx(123.75, rel=0.011)
    assert crossing[("GL201", "warning")].at is None   # flat at 1: not within 100x the largest size


def test_a_crossing_already_past_at_the_smallest_size_says_so():
    sweep = scaling.analyse("depth", [exploding(d, rate=2.0) for d in (10, 20)], None, THRESHOLDS)
    info = next(c for c in sweep.crossings if (c.code, c.level) == ("GL101", "info"))
    assert info.already and info.at == 10


def test_a_width_sweep_fits_power_laws_and_finds_activation_scales_that_drift():
    points = [Point(w, {"gsc_input": 3.0 * w ** -0.5, "compositional_depth": 9}, "clean", (),
                    {"Linear": 0.4, "output": 0.05 * w ** 0.5}) for w in (64, 128, 256)]
    sweep = scaling.analyse("d_model", points, 1024, THRESHOLDS)
    assert sweep.axis == "width" and sweep.crossings == ()
    fits = {f.figure: f for f in sweep.fits}
    assert fits["gsc_input"].form == "power" and fits["gsc_input"].b == pytest.approx(-0.5)
    assert fits["gsc_input"].predicted == pytest.approx(3.0 / 32)
    scales = {s.layer_type: s for s in sweep.scales}
    assert scales["Linear"].flat and scales["Linear"].exponent == pytest.approx(0, abs=1e-12)
    assert not scales["output"].flat and scales["output"].exponent == pytest.approx(0.5)


@pytest.mark.parametrize("key, axis", [("depth", "depth"), ("n_layer", "depth"), ("blocks", "depth"),
                                       ("width", "width"), ("n_embd", "width"), ("hidden_size", "width")])
def test_the_axis_is_read_from_the_key(key, axis):
    assert scaling.axis_of(key) == axis


FAMILY = '''
import torch.nn as nn


def build(depth: int = 4, width: int = 32):
    """A batch-ReLU MLP family (the paper's exploding net)."""
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.BatchNorm1d(width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def fixed():
    return build()
'''


@pytest.mark.cli
def test_sweep_on_the_command_line_reports_every_size_and_its_fit(gradlint, tmp_path):
    (tmp_path / "family.py").write_text(FAMILY)
    run = gradlint("family.py:build", "--sweep", "depth=4,8,16", "--predict", "32", "--format", "json",
                   "--input-shape", "32", "--batch-size", "128", cwd=tmp_path)
    assert run.code == 0, run.stderr
    doc = run.json()   # validated against the JSON Schema
    sweep = doc["sweep"]
    assert [r["target"] for r in doc["results"]] == [f"family.py:build[depth={d}]" for d in (4, 8, 16)]
    assert [p["value"] for p in sweep["points"]] == [4, 8, 16]
    # each point's figures are its result's summary
    for p, r in zip(sweep["points"], doc["results"]):
        assert p["figures"]["gsc_max"] == r["summary"]["gsc_max"]
    fits = {f["figure"]: f for f in sweep["fits"]}
    largest = doc["results"][-1]["summary"]
    assert fits["gsc_max"]["form"] == "rate"
    assert fits["gsc_max"]["predicted"] == pytest.approx(
        largest["gsc_max"] * largest["explosion_rate"] ** (33 - largest["compositional_depth"]), rel=1e-4)
    text = gradlint("family.py:build", "--sweep", "depth=4,8", "--input-shape", "32", cwd=tmp_path)
    assert text.code == 0 and "| 4 | 5 |" in text.stdout and f"GL101 warning (gsc_max >= {ExplodingGradients.options['warning']:g})" in text.stdout


@pytest.mark.cli
@pytest.mark.parametrize("args, message", [
    (("family.py:build", "--predict", "8"), "--predict needs --sweep"),
    (("family.py:build", "family.py:fixed", "--sweep", "depth=2,4"), "exactly one target"),
    (("family.py:fixed", "--sweep", "depth=2,4"), "takes no argument 'depth'"),
    (("family.py:build", "--sweep", "depth=4"), "two or more positive sizes"),
    (("family.py:build", "--sweep", "depth=2,4", "--format", "sarif"), "text or json"),
])
def test_sweep_misuse_is_a_one_line_error(gradlint, tmp_path, args, message):
    (tmp_path / "family.py").write_text(FAMILY)
    run = gradlint(*args, "--input-shape", "32", cwd=tmp_path)
    assert run.code == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr


@pytest.mark.probe
def test_the_python_sweep_probes_each_size_as_lint_would():
    import torch

    import gradlint
    from gradlint import paper

    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    build = lambda depth: paper.mlp("batch-relu", depth, width=32)  # noqa: E731
    found, results = gradlint.sweep(build, "depth", [3, 6], x, predict=12)
    assert [p.value for p in found.points] == [3, 6] and found.predict_at == 12
    torch.manual_seed(0)
    alone = gradlint.lint(build(6), x)
    assert results[1].report.summary == alone.report.summary
    assert found.points[1].figures["gsc_max"] == alone.report.summary.gsc_max
