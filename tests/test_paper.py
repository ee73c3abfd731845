"""The paper's architectures (gradlint.paper) against the spec's reference values, and seed stability."""

import statistics

import pytest
import torch

import gradlint
from gradlint import paper
from gradlint.init import looks_linear_

pytestmark = pytest.mark.probe


def build(name: str):
    torch.manual_seed(0)
    if name == "looks-linear":
        return looks_linear_(paper.mlp("relu"), generator=torch.Generator().manual_seed(0))
    if name.startswith("resnet-"):
        return paper.resnet(float(name[len("resnet-"):]))
    return paper.mlp(name)


# Spec (docs/metrics.md), 50-layer width-100 MLPs, Gaussian inputs, B = 256: explosion rate r
# and GSC at the input side.  Ranges: +-0.02 on r for the exploding nets (+-0.015 for SeLU, whose
# reference 1.04 is closer to 1), "1.00-1.01" widened by the probe's noise for ReLU and tanh, and a
# factor of 2 on the GSC (a 50-layer product: 1% on r is 60% on r^50).
REFERENCE = {
    "batch-relu": ((1.18, 1.22), (3e3, 1.2e4)),
    "batch-tanh": ((1.08, 1.12), (45, 180)),
    "layer-tanh": ((1.07, 1.11), (30, 120)),
    "selu": ((1.025, 1.055), (2.5, 10)),
    "relu": ((0.99, 1.02), (0.6, 2.4)),
    "tanh": ((0.99, 1.02), (0.6, 2.4)),
    "resnet-0.2": ((0.999, 1.003), (0.8, 1.3)),
    "looks-linear": ((0.9999, 1.0001), (0.99, 1.01)),
}


@pytest.fixture(scope="module")
def batch256():
    return torch.randn(256, 100, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list(REFERENCE))
def test_paper_table_rates_fall_in_the_spec_reference_ranges(name, batch256):
    (lo, hi), (glo, ghi) = REFERENCE[name]
    s = gradlint.lint(build(name), batch256).report.summary
    assert lo <= s.explosion_rate <= hi
    assert glo <= s.gsc_input <= ghi


def test_exploding_nets_are_clean_exponentials_and_residual_dilution_grows_with_depth(batch256):
    for name in ("batch-relu", "batch-tanh", "layer-tanh", "selu"):
        assert gradlint.lint(build(name), batch256).report.summary.explosion_fit_r2 > 0.98
    blocks = gradlint.lint(build("resnet-1.0"), batch256).report.residual_blocks
    # BatchNorm branches add unit variance per block, so the skip grows like sqrt(block): k ~ sqrt(i)
    assert blocks[0].dilution == pytest.approx(2 ** 0.5, rel=0.1)
    assert blocks[-1].dilution == pytest.approx(51 ** 0.5, rel=0.1)


@pytest.mark.parametrize("name", ["relu", "tanh", "selu", "linear", "layer-relu", "layer-tanh", "batch-relu",
                                  "batch-tanh", "looks-linear", "resnet-0.2", "resnet-1.0"])
def test_input_side_gsc_is_stable_over_probe_seeds_at_the_default_batch(name):
    """Five probe seeds (inferred inputs and cotangent), model fixed, default batch 64.

    The coefficient of variation stays under 15% (measured: 2-14%; the largest deviation from the
    median reaches 20% for SeLU and batch-tanh).  The spread is the quantity's own at B = 64, not the
    one-draw estimator's: exact Jacobians on the same batches vary 8-17%, more cotangent draws do not
    reduce it, and B = 256 about halves it for ReLU, SeLU and the tanh nets (not for batch-ReLU and
    layer-norm-ReLU; see benchmarks/paper_table.py --stability).
    """
    model = build(name)
    values = [gradlint.lint(model, seed=s).report.summary.gsc_input for s in range(5)]
    assert statistics.pstdev(values) / statistics.fmean(values) < 0.15
