"""Threshold calibration on real models: what each reference architecture must (and must not) get.

The measured figures behind each default are in the rule docstrings; these cases pin the verdicts.
"""

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint.rules import RULES

from reference_models import (ResidualMLP, gaussian, mlp, pre_norm_transformer, resnet18_like, small_cnn, tokens,
                              vgg_like_bn)

pytestmark = pytest.mark.probe


def lint(model, *shape, batch=64):
    return gradlint.lint(model, gaussian(batch, *shape))


def codes(result, severity=None):
    return {f.code for f in result.findings if severity is None or f.severity == severity}


def built(factory, seed=0):
    torch.manual_seed(seed)
    return factory()


def test_batch_relu_50x100_he_init_is_an_exploding_gradients_error():
    result = lint(built(lambda: mlp(50, 100, nn.ReLU, "batch", "he")), 100)
    top = result.findings[0]
    assert (top.code, top.severity) == ("GL101", "error")
    assert top.value > 1000 and top.threshold == 1000
    assert "1.2" in top.message  # the per-layer rate is in the message
    assert top.layer == "0"  # an nn.Sequential built in place has no file of the user's: path and line are None
    assert "GL401" in codes(result, "warning")  # deep plain stack: add residual connections around 0..150
    assert "around layers 0..150" in next(f for f in result.findings if f.code == "GL401").recommendation


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh])
def test_default_init_mlps_vanish_and_collapse(act):
    # PyTorch's default Linear init (weight var 1/(3 fan_in), uniform biases) shrinks the signal ~0.4-0.6x
    # per layer until the biases dominate: the output no longer depends on the input.
    result = lint(built(lambda: mlp(20, 100, act)), 100)
    assert {"GL102", "GL201"} <= codes(result, "error")
    assert result.report.summary.gsc_input < 1e-3
    assert result.report.summary.min_relative_spread < 0.01


def test_he_init_relu_mlp_collapses_sign_diversity_without_exploding():
    result = lint(built(lambda: mlp(50, 100, nn.ReLU, None, "he")), 100)
    assert "GL202" in codes(result, "warning")
    assert not codes(result) & {"GL101", "GL102", "GL201"}


def test_lecun_tanh_mlp_is_pseudo_linear():
    result = lint(built(lambda: mlp(50, 100, nn.Tanh, None, "lecun")), 100)
    assert "GL203" in codes(result)
    assert "GL101" not in codes(result)


def test_layer_norm_tanh_explodes_at_warning_level():
    result = lint(built(lambda: mlp(50, 100, nn.Tanh, "layer", "lecun")), 100)
    gl101 = next(f for f in result.findings if f.code == "GL101")
    assert gl101.severity == "warning"
    assert 1.05 < result.report.summary.explosion_rate < 1.15


HEALTHY = [
    ("residual MLP, branches x0.2", lambda: ResidualMLP(scale=0.2), lambda: gaussian(64, 100)),
    ("residual MLP, branches x1", lambda: ResidualMLP(scale=1.0), lambda: gaussian(64, 100)),
    ("small conv net with BN", small_cnn, lambda: gaussian(16, 3, 32, 32)),
    ("4-layer default-init MLP", lambda: mlp(3, 64, nn.ReLU), lambda: gaussian(64, 64)),
    ("pre-norm Transformer, standard init", pre_norm_transformer, lambda: tokens(16, 32, 1000)),
    ("BN ResNet-18-like, zero-initialised residual branches", resnet18_like, lambda: gaussian(8, 3, 32, 32)),
    ("BN ResNet-18-like, standard init", lambda: resnet18_like(zero_init_residual=False),
     lambda: gaussian(8, 3, 32, 32)),
    ("VGG-11-like with BN", vgg_like_bn, lambda: gaussian(8, 3, 32, 32)),
    ("VGG-16-like with BN", lambda: vgg_like_bn(depth=16), lambda: gaussian(8, 3, 32, 32)),
]


@pytest.mark.parametrize("name, factory, inputs", HEALTHY, ids=[h[0] for h in HEALTHY])
@pytest.mark.parametrize("seed", [0, 1])
def test_healthy_references_get_at_most_informational_findings(name, factory, inputs, seed):
    """Measured (seed 0): Transformer and residual MLP clean; ResNet-18-like with zero-init clean (the ReLU
    after a zero branch sees an already rectified input and is not judged), without zero-init GL403 info
    (first block k = 0.71); VGG-BN GL101 info (GSC 4-10: BatchNorm's explosion over few layers) and GL404
    info (conv biases before BN)."""
    result = gradlint.lint(built(factory, seed), inputs())
    assert not codes(result, "error") and not codes(result, "warning"), \
        [(f.code, f.severity, f.message) for f in result.findings]


def test_rule_codes_are_unique_and_well_formed():
    seen = [r.code for r in RULES]
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    for rule in RULES:
        assert rule.code[:2] == "GL" and len(rule.code) == 5 and rule.code[2:].isdigit()
        assert rule.severity in ("error", "warning", "info")
        assert rule.name == rule.name.lower() and " " not in rule.name
        for section in ("What it does:", "Why is this bad?", "Example:", "How to fix:", "References:"):
            assert section in rule.__doc__, (rule.code, section)


def test_findings_point_at_source_lines_of_the_model_file(tmp_path, monkeypatch):
    src = tmp_path / "net.py"
    src.write_text(
        "import torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.layers = nn.ModuleList(nn.Linear(32, 32) for _ in range(30))\n"
        "        self.act = nn.Tanh()\n"
        "    def forward(self, x):\n"
        "        for layer in self.layers:\n"
        "            x = self.act(layer(x))\n"
        "        return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from net import Net  # noqa: E402

    torch.manual_seed(0)
    result = gradlint.lint(Net(), gaussian(64, 32))
    located = [f for f in result.findings if f.layer and f.layer.startswith("layers.")]
    assert located
    for f in located:  # built before gradlint could record it: the line that assigns the ModuleList
        assert f.path.endswith("net.py") and f.line == 5


@pytest.mark.parametrize("name, expected", [
    ("batch-relu", {"GL101": "error"}),
    ("batch-tanh", {"GL101": "warning"}),
    ("layer-tanh", {"GL101": "warning"}),
    ("selu", {"GL101": "warning"}),
    ("relu", {"GL202": "warning"}),
    ("layer-relu", {"GL202": "warning"}),
    ("tanh", {"GL203": "warning"}),
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_mlps_get_their_family_at_warning_or_error(name, expected, seed):
    """The paper's split: batch/layer-norm and SeLU nets explode, ReLU/layer-ReLU lose sign
    diversity, tanh becomes pseudo-linear (gradlint.paper builders, default batch 64)."""
    from gradlint import paper

    result = gradlint.lint(built(lambda: paper.mlp(name), seed), seed=seed)
    got = {f.code: f.severity for f in result.findings}
    for code, severity in expected.items():
        assert got.get(code) == severity, (code, got)
    exploding = name in ("batch-relu", "batch-tanh", "layer-tanh", "selu")
    assert ("GL101" in got and got["GL101"] != "info") == exploding


def test_selu_mlp_is_a_deep_plain_stack_with_a_pathology():
    """GL401 and GL301 read the other rules' verdicts: SeLU's GL101 warning comes from its rate alone."""
    from gradlint import paper

    result = gradlint.lint(built(lambda: paper.mlp("selu")))
    got = {f.code: f.severity for f in result.findings}
    assert got["GL101"] == "warning" and got["GL401"] == "warning"
