"""``gradlint.render.plot``: the Fig. 1 panels (GSC, pre-activation std, sign diversity against depth)."""

import importlib.util
import math
import sys
import xml.etree.ElementTree as ET

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint.render.plot import PlotError, panel_data, plot

pytestmark = pytest.mark.probe

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="matplotlib is not installed")

BN_RELU = "batch-ReLU MLP (He init)"
TANH = "tanh MLP (default init)"


def _mlp(act: type[nn.Module], batch_norm: bool, he_init: bool, depth: int = 12, width: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        if he_init:
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        layers += [linear, nn.BatchNorm1d(width)] if batch_norm else [linear]
        layers.append(act())
    return nn.Sequential(*layers)


@pytest.fixture(scope="module")
def reports():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        bn_relu = _mlp(nn.ReLU, batch_norm=True, he_init=True)
        tanh = _mlp(nn.Tanh, batch_norm=False, he_init=False)
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    return [(BN_RELU, gradlint.lint(bn_relu, x).report), (TANH, gradlint.lint(tanh, x).report)]


def test_gsc_panel_is_the_spine_profile_growing_toward_the_input(reports):
    report = reports[0][1]
    points = panel_data(report)["gsc"]
    spine = [(x.depth, x.gsc) for x in report.layers
             if x.spine and x.kind in ("input", "layer", "embedding", "merge") and x.gsc is not None]
    assert points == spine
    assert len(points) == report.summary.spine_points == 13
    depths = [d for d, _ in points]
    assert depths == sorted(depths, reverse=True) and depths[0] == report.summary.compositional_depth
    assert points[0][1] == report.summary.gsc_input and max(g for _, g in points) == report.summary.gsc_max
    # Gradient explosion: ln GSC rises with depth (not monotone step by step at width 32).
    n = len(points)
    mean_d = sum(depths) / n
    mean_l = sum(math.log(g) for _, g in points) / n
    slope = (sum((d - mean_d) * (math.log(g) - mean_l) for d, g in points)
             / sum((d - mean_d) ** 2 for d in depths))
    assert slope > 0.1
    assert points[0][1] > 3 * points[-1][1]


def test_collapse_panels_hold_every_nonlinearity(reports):
    for _, report in reports:
        data = panel_data(report)
        nonlin = [x for x in report.layers if x.kind == "nonlinearity"]
        assert len(nonlin) == 12
        assert data["preact_std"] == [(x.depth, x.preact_std) for x in nonlin]
        assert data["sign_diversity"] == [(x.depth, x.sign_diversity) for x in nonlin]
        assert all(0 <= s <= 0.5 for _, s in data["sign_diversity"])


@needs_matplotlib
def test_png_and_svg_are_written_and_byte_identical(reports, tmp_path):
    png, svg = tmp_path / "fig.png", tmp_path / "fig.svg"
    plot(reports, png)
    plot(reports, svg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    texts = {"".join(e.itertext()).strip() for e in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")}
    assert {BN_RELU, TANH} <= texts
    first = png.read_bytes(), svg.read_bytes()
    plot(reports, png)
    plot(reports, svg)
    assert (png.read_bytes(), svg.read_bytes()) == first


@needs_matplotlib
def test_panels_without_points_are_drawn_empty(tmp_path):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        linear = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    report = gradlint.lint(linear, torch.randn(16, 8, generator=torch.Generator().manual_seed(0))).report
    assert panel_data(report)["preact_std"] == [] and panel_data(report)["gsc"]
    plot([("linear", report)], tmp_path / "linear.svg")
    assert "linear" in (tmp_path / "linear.svg").read_text()


def test_unsupported_suffix_names_the_path(reports, tmp_path):
    target = tmp_path / "fig.pdf"
    with pytest.raises(PlotError, match=r"fig\.pdf.*\.png, \.svg") as err:
        plot(reports, target)
    assert err.value.kind == "input" and isinstance(err.value, gradlint.GradlintError)
    assert not target.exists()


def test_missing_directory_names_it(reports, tmp_path):
    with pytest.raises(PlotError, match="nowhere"):
        plot(reports, tmp_path / "nowhere" / "fig.png")


def test_missing_matplotlib_says_how_to_install(reports, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotError, match=r"--plot needs matplotlib: pip install 'gradlint\[plot\]'"):
        plot(reports, tmp_path / "fig.png")
    assert not (tmp_path / "fig.png").exists()
