"""gradlint.init: the orthogonal initial state (orthogonal_, looks_linear_, zero_init_residual_).

Reference values are computed independently of gradlint.init: singular values and Gram matrices
of the weights, exact Jacobians in float64, quadrature by torch.trapezoid, and hand-written
forward passes with the residual branches removed.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.functional import jacobian

import gradlint
from gradlint import init, stats
from gradlint.errors import GradlintError
from gradlint.init import InitChanges, InitError

from reference_models import ResidualMLP, SmallResNet, gaussian, mlp, small_cnn

pytestmark = pytest.mark.probe

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- helpers


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def svals(w: torch.Tensor) -> torch.Tensor:
    return torch.linalg.svdvals(w.detach().double().reshape(w.shape[0], -1))


def gaussian_moment(phi) -> float:
    """E[phi(z)^2], z ~ N(0, 1), by the trapezoid rule (independent of gradlint.init's quadrature)."""
    z = torch.linspace(-12, 12, 240_001, dtype=torch.float64)
    pdf = torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return float(torch.trapezoid(phi(z) ** 2 * pdf, z))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_semi_orthogonal(m: torch.Tensor, scale: float = 1.0, tol: float = 1e-5) -> None:
    """Orthonormal rows or columns (whichever side is smaller), times ``scale``."""
    m = m.detach().double()
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    eye = torch.eye(gram.shape[0], dtype=torch.float64)
    error = float((gram - scale ** 2 * eye).abs().max())
    assert error < tol * max(1.0, scale ** 2), error


def deep_mlp_example():
    spec = importlib.util.spec_from_file_location("deep_mlp_example", ROOT / "examples" / "deep_mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.deep_mlp


def relu_mlp(depth: int, d_in: int, width: int, d_out: int, act=nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d_in, width), act()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), act()]
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


class Wrapped(nn.Module):
    """Puts a model under ``net`` so refusals must name the layer by its full path."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.act, self.l3 = nn.Linear(4, 6), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2)

    def forward(self, x):
        if x.sum() > 0:
            x = -x
        return self.l3(self.act(self.l2(torch.relu(self.l1(x)))))


# --------------------------------------------------------------------------- orthogonal_: gains


def test_nonlinearity_gain_is_inverse_rms_of_phi_under_a_standard_gaussian():
    assert init.nonlinearity_gain(nn.ReLU()) == pytest.approx(math.sqrt(2), abs=1e-9)
    assert init.nonlinearity_gain(nn.ReLU(inplace=True)) == pytest.approx(math.sqrt(2), abs=1e-9)
    assert init.nonlinearity_gain(nn.LeakyReLU(0.1)) == pytest.approx(math.sqrt(2 / 1.01), abs=1e-9)
    assert init.nonlinearity_gain(nn.SELU()) == pytest.approx(1.0, abs=1e-6)
    assert init.nonlinearity_gain(lambda z: z) == pytest.approx(1.0, abs=1e-12)
    for module, fn in [(nn.Tanh(), torch.tanh), (nn.GELU(), F.gelu), (nn.Sigmoid(), torch.sigmoid)]:
        assert init.nonlinearity_gain(module) == pytest.approx(gaussian_moment(fn) ** -0.5, abs=1e-6)
    assert init.nonlinearity_gain(nn.Tanh()) == pytest.approx(1.5925, abs=1e-4)
    # A parametrised float32 module is evaluated on a float64 copy; per-channel slopes are averaged.
    prelu = nn.PReLU(3)
    with torch.no_grad():
        prelu.weight.copy_(torch.tensor([0.0, 0.5, 1.0]))
    expected = (sum((1 + a * a) / 2 for a in (0.0, 0.5, 1.0)) / 3) ** -0.5
    assert init.nonlinearity_gain(prelu) == pytest.approx(expected, abs=1e-9)
    assert prelu.weight.dtype == torch.float32


# --------------------------------------------------------------------------- orthogonal_: Linear


def test_orthogonal_mlp_weights_are_orthogonal_with_the_gain_of_the_nonlinearity_they_feed():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(32, 64), nn.ReLU(),                        # expanding, ReLU-fed
        nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),    # square, ReLU-fed through a norm
        nn.Linear(64, 64), nn.Tanh(),                        # square, tanh-fed
        nn.Linear(64, 128), nn.Dropout(0.1), nn.LeakyReLU(0.2),  # expanding, leaky-fed through dropout
        nn.Linear(128, 48),                                  # contracting head: identity
    )
    changes = init.apply(model, "orthogonal", generator=gen())
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert set(changes.changed) == {f"{i}.{p}" for i in (0, 2, 5, 7, 10) for p in ("weight", "bias")}
    assert changes.skipped == ()
    for lin in linears:
        assert stats.orthogonality_defect(lin.weight) < 1e-5
        assert torch.count_nonzero(lin.bias) == 0
    relu, tanh = math.sqrt(2), gaussian_moment(torch.tanh) ** -0.5
    leaky = math.sqrt(2 / (1 + 0.2 ** 2))
    expected = [relu * math.sqrt(2), relu, tanh, leaky * math.sqrt(2), 1.0]
    for lin, scale in zip(linears, expected):
        s = svals(lin.weight)
        assert torch.allclose(s, torch.full_like(s, scale), rtol=1e-5), (lin, s[[0, -1]], scale)
    assert svals(linears[1].weight)[0] == pytest.approx(math.sqrt(2), rel=1e-5)
    assert svals(linears[2].weight)[0] == pytest.approx(1.59, abs=0.01)
    # Per-unit pre-activation variance is kept for every shape: the mean squared row norm is gain^2
    # (for expanding layers thanks to s = sqrt(out / in)).
    for lin, gain in zip(linears, (relu, relu, tanh, leaky, 1.0)):
        mean_row_sq = float(lin.weight.detach().double().pow(2).sum(1).mean())
        assert mean_row_sq == pytest.approx(gain ** 2, rel=1e-5)


def test_orthogonal_gain_is_found_on_the_traced_graph_through_functional_ops_and_merges():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c, self.d = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 4)
            self.norm = nn.LayerNorm(16)
            self.unused = nn.Tanh()  # registered after `a`, but `a` feeds F.relu

        def forward(self, x):
            h = F.relu(self.norm(self.a(x)).view(-1, 16))      # functional relu through a norm and a view
            h = torch.tanh(self.b(h))                         # functional tanh
            h = h + self.c(h)                                 # feeds a merge: identity
            return self.d(F.leaky_relu(h, 0.3))

    model = Net()
    init.orthogonal_(model, generator=gen())
    assert svals(model.a.weight)[0] == pytest.approx(math.sqrt(2), rel=1e-5)
    assert svals(model.b.weight)[0] == pytest.approx(gaussian_moment(torch.tanh) ** -0.5, rel=1e-5)
    assert svals(model.c.weight)[0] == pytest.approx(1.0, rel=1e-5)
    assert svals(model.d.weight)[0] == pytest.approx(1.0, rel=1e-5)


def test_orthogonal_untraceable_model_takes_the_next_nonlinearity_module_before_the_next_layer():
    model = Untraceable()
    changes = init.apply(model, "orthogonal", generator=gen())
    assert len(changes.changed) == 6
    # l1 -> (functional relu, invisible) -> l2: no module nonlinearity before l2, gain 1 (times sqrt(6/4))
    assert svals(model.l1.weight)[0] == pytest.approx(math.sqrt(6 / 4), rel=1e-5)
    assert svals(model.l2.weight)[0] == pytest.approx(gaussian_moment(torch.tanh) ** -0.5, rel=1e-5)
    assert svals(model.l3.weight)[0] == pytest.approx(1.0, rel=1e-5)


def test_orthogonal_leaves_unsupported_layers_unchanged_and_says_why():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 6)
            self.bil = nn.Bilinear(6, 6, 6)
            self.w = nn.Parameter(torch.randn(6, 6))
            self.emb = nn.Embedding(10, 6)
            self.head = nn.Linear(6, 10, bias=False)
            self.head.weight = self.emb.weight                 # tied to a non-depth-bearing module

        def forward(self, x):
            h = self.lin(x)
            h = self.bil(h, h)
            h = F.linear(h, self.w)
            return self.head(h)

    model = Net()
    before = snapshot(model)
    planned = init.plan(model, "orthogonal")
    assert same_state(before, snapshot(model))              # plan changes nothing
    changes = init.apply(model, "orthogonal", generator=gen())
    assert changes == planned
    assert changes.changed == ("lin.weight", "lin.bias")
    skipped = dict(changes.skipped)
    assert set(skipped) == {"bil", "head", "w"}
    assert "Bilinear" in skipped["bil"] and "emb.weight" in skipped["head"] and "functional" in skipped["w"]
    after = snapshot(model)
    for name in ("bil.weight", "bil.bias", "w", "emb.weight"):
        assert torch.equal(before[name], after[name])


# --------------------------------------------------------------------------- orthogonal_: convolutions


def centre_and_rest(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    idx = (slice(None), slice(None)) + tuple(k // 2 for k in w.shape[2:])
    rest = w.detach().clone()
    rest[idx] = 0
    return w.detach()[idx], rest


def test_orthogonal_conv_net_is_delta_orthogonal_with_zero_defect():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 8, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 5, padding=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    init.orthogonal_(model, generator=gen())
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    for conv, gain in zip(convs, (math.sqrt(2), gaussian_moment(torch.tanh) ** -0.5, 1.0)):
        assert stats.orthogonality_defect(conv.weight) < 1e-5
        centre, rest = centre_and_rest(conv.weight)
        assert torch.count_nonzero(rest) == 0                   # every non-centre tap is exactly zero
        assert_semi_orthogonal(centre, gain)
        assert torch.count_nonzero(conv.bias) == 0
    # A delta-orthogonal conv with stride 1 and 'same' padding is an isometry (times the gain) per position.
    x = gaussian(2, 16, 6, 6, seed=3)
    y = F.conv2d(x, convs[0].weight.detach(), padding=1)
    assert float(y.norm() / x.norm()) == pytest.approx(math.sqrt(2), rel=1e-5)


def test_orthogonal_grouped_depthwise_transposed_and_1d_3d_convs():
    model = nn.ModuleDict({
        "expand": nn.Conv2d(3, 16, 3),                         # centre tap has orthonormal columns, times sqrt(16/3)
        "depthwise": nn.Conv2d(8, 8, 3, groups=8),
        "grouped": nn.Conv2d(8, 16, 3, groups=4),
        "transposed": nn.ConvTranspose2d(8, 4, 3, groups=2),   # weight (in, out/groups, k, k)
        "one": nn.Conv1d(4, 4, 5),
        "three": nn.Conv3d(4, 2, 3),
        "even": nn.Conv2d(4, 4, 4),                            # centre index k // 2 = 2
    })
    changes = init.apply(model, "orthogonal", generator=gen())
    assert len(changes.changed) == 14 and changes.skipped == ()
    for conv in model.values():
        centre, rest = centre_and_rest(conv.weight)
        assert torch.count_nonzero(rest) == 0, conv
    centre, _ = centre_and_rest(model["expand"].weight)
    assert_semi_orthogonal(centre, math.sqrt(16 / 3))
    centre, _ = centre_and_rest(model["depthwise"].weight)
    assert torch.equal(centre.abs(), torch.ones(8, 1))          # one random sign per channel
    centre, _ = centre_and_rest(model["grouped"].weight)        # (16, 2): 4 groups of (4 out x 2 in)
    for g in range(4):
        assert_semi_orthogonal(centre[4 * g:4 * (g + 1)], math.sqrt(4 / 2))
    centre, _ = centre_and_rest(model["transposed"].weight)     # (8, 2): 2 groups, map (2 out x 4 in) = slice.T
    for g in range(2):
        assert_semi_orthogonal(centre[4 * g:4 * (g + 1)].T)
    for name in ("one", "three", "even"):
        centre, _ = centre_and_rest(model[name].weight)
        assert_semi_orthogonal(centre)
    assert model["even"].weight[:, :, 2, 2].abs().sum() > 0


# --------------------------------------------------------------------------- orthogonal_: RNN and attention


def test_orthogonal_recurrent_gates_and_attention_projections_are_orthogonal_chunks():
    model = nn.ModuleDict({
        "lstm": nn.LSTM(6, 8, num_layers=2), "gru": nn.GRU(8, 8, bidirectional=True), "cell": nn.RNNCell(5, 7),
        "attn": nn.MultiheadAttention(16, 4), "cross": nn.MultiheadAttention(8, 2, kdim=5, vdim=3),
    })
    changes = init.apply(model, "orthogonal", generator=gen())
    changed = set(changes.changed)
    for rnn_name in ("lstm", "gru", "cell"):
        rnn = model[rnn_name]
        for pname, p in rnn.named_parameters():
            assert f"{rnn_name}.{pname}" in changed
            if pname.startswith("bias"):
                assert torch.count_nonzero(p) == 0
            else:
                for chunk in p.split(rnn.hidden_size, 0):
                    assert_semi_orthogonal(chunk)
    attn = model["attn"]
    for chunk in attn.in_proj_weight.split(16, 0):
        assert_semi_orthogonal(chunk)
    assert_semi_orthogonal(attn.out_proj.weight)
    assert torch.count_nonzero(attn.in_proj_bias) == 0 and torch.count_nonzero(attn.out_proj.bias) == 0
    cross = model["cross"]
    for p in (cross.q_proj_weight, cross.k_proj_weight, cross.v_proj_weight, cross.out_proj.weight):
        assert_semi_orthogonal(p)
    assert {"attn.out_proj.weight", "cross.k_proj_weight"} <= changed


# --------------------------------------------------------------------------- orthogonal_: the probe


def test_orthogonal_tanh_mlp_keeps_the_forward_scale_and_grows_gsc_at_the_mean_field_rate():
    """Gain 1/sqrt(E tanh(z)^2) ~ 1.59 fixes the pre-activation variance at 1 (q* = 1), which is in
    tanh's chaotic phase: chi_1 = gain^2 E[tanh'(z)^2] ~ 1.18, so the GSC grows by sqrt(chi_1) ~ 1.085
    per layer (measured: 1.092 with this seed, 1.086-1.092 over seeds and batch sizes)."""
    torch.manual_seed(0)
    model = mlp(20, 64, act=nn.Tanh)
    x = gaussian(256, 64, seed=0)
    before = gradlint.lint(model, x).report.summary
    init.orthogonal_(model, generator=gen())
    after = gradlint.lint(model, x).report.summary
    gain = svals(model[0].weight)[0].item()
    chi1 = gain ** 2 * gaussian_moment(lambda z: 1 - torch.tanh(z) ** 2)
    assert before.explosion_rate < 0.7                      # PyTorch's default init: vanishing (measured 0.61)
    assert after.explosion_rate == pytest.approx(math.sqrt(chi1), abs=0.015)
    assert after.explosion_fit_r2 > 0.95
    assert after.min_preact_std > 0.95                      # forward scale kept at every tanh (measured 1.000)
    assert after.mean_orthogonality_defect < 1e-5


# --------------------------------------------------------------------------- looks_linear_


def test_looks_linear_relu_mlp_has_gsc_one_at_every_spine_layer():
    torch.manual_seed(0)
    model = relu_mlp(30, 50, 100, 50)
    init.looks_linear_(model, generator=gen())
    report = gradlint.lint(model, gaussian(256, 50, seed=1)).report
    gscs = [layer.gsc for layer in report.layers if layer.spine and layer.gsc is not None]
    assert len(gscs) >= 60
    assert max(abs(g - 1) for g in gscs) < 1e-3             # measured 2.3e-8 (exact up to float32 rounding)
    assert report.summary.explosion_rate == pytest.approx(1.0, abs=1e-4)


def test_looks_linear_relu_mlp_is_exactly_an_orthogonal_linear_map():
    torch.manual_seed(0)
    model = relu_mlp(30, 50, 100, 50)
    init.looks_linear_(model, generator=gen())
    f = copy.deepcopy(model).double()
    x, y = gaussian(64, 50, seed=2).double(), gaussian(64, 50, seed=3).double()
    jac = jacobian(f, x[0])                                   # M from one point
    with torch.no_grad():
        out = f(x)
        assert torch.allclose(out, x @ jac.T, rtol=0, atol=1e-9 * float(out.abs().max()))
        a, b = 0.7, -1.9
        lhs, rhs = f(a * x + b * y), a * f(x) + b * f(y)
        assert float((lhs - rhs).norm() / rhs.norm()) < 1e-10
    s = torch.linalg.svdvals(jac)                             # P and B are isometries: so is the network
    assert torch.allclose(s, torch.ones_like(s), atol=1e-10)
    # The mirrored block structure itself: hidden W = [[A, -A], [-A, A]], A orthogonal; first [P; -P].
    w = model[2].weight.detach().double()
    A = w[:50, :50]
    assert torch.equal(w[:50, 50:], -A) and torch.equal(w[50:, :50], -A) and torch.equal(w[50:, 50:], A)
    assert_semi_orthogonal(A)
    w0 = model[0].weight.detach()
    assert torch.equal(w0[50:], -w0[:50])
    assert all(torch.count_nonzero(m.bias) == 0 for m in model if isinstance(m, nn.Linear))


def test_looks_linear_leaky_prelu_and_functional_relu_with_odd_io_widths_stay_linear():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.act1 = nn.Linear(7, 16), nn.LeakyReLU(0.2)
            self.l2, self.act2 = nn.Linear(16, 24), nn.PReLU(24)
            self.l3, self.l4 = nn.Linear(24, 12), nn.Linear(12, 3)

        def forward(self, x):
            h = self.act2(self.l2(self.act1(self.l1(torch.flatten(x, 1)))))
            return self.l4(F.relu(self.l3(h)))

    model = Net()
    changes = init.apply(model, "looks-linear", generator=gen())
    assert len(changes.changed) == 8
    f = copy.deepcopy(model).double()
    x, y = gaussian(32, 7, 1, seed=4).double(), gaussian(32, 7, 1, seed=5).double()
    with torch.no_grad():
        lhs, rhs = f(2 * x - 3 * y), 2 * f(x) - 3 * f(y)
    assert float((lhs - rhs).norm() / rhs.norm()) < 1e-10
    jac = jacobian(lambda v: f(v.reshape(1, 7, 1)).reshape(3), x[0].reshape(7))
    # P: 8x7 with orthonormal columns, A2: 12x8, A3: 6x12, B: 3x6 with orthonormal rows -> the map is B A3 A2 P
    assert float(torch.linalg.svdvals(jac).max()) <= 1 + 1e-10


def test_looks_linear_accepts_the_batchnorm_example_and_removes_its_explosion():
    deep_mlp = deep_mlp_example()
    torch.manual_seed(0)
    model = deep_mlp()
    x = gaussian(256, 100, seed=0)
    before = gradlint.lint(model, x).report.summary
    with torch.no_grad():                                     # non-trivial norm affines get reset
        model[1].weight.fill_(2.0)
        model[1].bias.fill_(0.5)
    changes = init.apply(model, "looks-linear", generator=gen())
    after = gradlint.lint(model, x).report.summary
    assert "1.weight" in changes.changed and "1.bias" in changes.changed
    norms = [m for m in model if isinstance(m, nn.BatchNorm1d)]
    assert all(torch.all(n.weight == 1) and torch.count_nonzero(n.bias) == 0 for n in norms)
    assert before.explosion_rate > 1.15                       # measured 1.2005
    assert after.explosion_rate < 1.01                        # measured 1.0011
    assert after.gsc_input < 1.2 < 1000 < before.gsc_input   # measured 1.06 vs 7.2e3


def _odd_width():
    return nn.Sequential(nn.Linear(8, 10), nn.ReLU(), nn.Linear(10, 7), nn.ReLU(), nn.Linear(7, 2))


def _prelu_unmirrored():
    net = nn.Sequential(nn.Linear(8, 4), nn.PReLU(4), nn.Linear(4, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    return net


@pytest.mark.parametrize("build, expected", [
    (lambda: Wrapped(mlp(3, 8, act=nn.Tanh)), ["layer 'net.1' (Tanh) is not ReLU-family", "ReLU/LeakyReLU/PReLU"]),
    (lambda: Wrapped(_odd_width()), ["layer 'net.2' (Linear 10->7) has odd width 7"]),
    (lambda: Wrapped(small_cnn()), ["layer 'net.0' (Conv2d)", "use orthogonal_ for convolutional nets"]),
    (lambda: ResidualMLP(8, 2), ["'add' (add) is a residual merge in ResidualMLP", "zero_init_residual_"]),
    (lambda: Wrapped(nn.Sequential(nn.Linear(4, 6), nn.ReLU6(), nn.Linear(6, 2))), ["'net.1' (ReLU6)"]),
    (lambda: Wrapped(_prelu_unmirrored()), ["'net.1' (PReLU)", "different slopes"]),
    (lambda: Wrapped(nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 6))), ["'net.0' (Embedding) is not supported"]),
    (lambda: Untraceable(), ["torch.fx cannot trace Untraceable"]),
    (lambda: nn.Sequential(nn.Flatten(), nn.Dropout()), ["has no Linear layer"]),
], ids=["tanh", "odd-width", "conv", "residual", "relu6", "prelu-slopes", "embedding", "untraceable", "no-linear"])
def test_looks_linear_refuses_with_a_one_line_message_naming_the_layer_and_changes_nothing(build, expected):
    torch.manual_seed(0)
    model = build()
    before = snapshot(model)
    with pytest.raises(InitError) as info:
        init.looks_linear_(model, generator=gen())
    err = info.value
    assert isinstance(err, GradlintError) and not isinstance(err, ValueError)
    assert err.kind == "input"
    message = str(err)
    assert message.startswith("looks_linear_: ") and "\n" not in message
    for part in expected:
        assert part in message, message
    assert same_state(before, snapshot(model))


# --------------------------------------------------------------------------- zero_init_residual_


def test_zero_init_residual_makes_every_residual_mlp_block_the_identity():
    torch.manual_seed(0)
    model = ResidualMLP(width=16, blocks=4)
    stem_head = snapshot(nn.ModuleList([model.stem, model.head]))
    changes = init.apply(model, "zero-residual")
    assert changes.changed == tuple(f"blocks.{i}.3.{p}" for i in range(4) for p in ("weight", "bias"))
    assert changes.skipped == ()
    x = gaussian(32, 16, seed=1)
    with torch.no_grad():
        assert torch.equal(model(x), model.head(model.stem(x)))
    assert same_state(stem_head, snapshot(nn.ModuleList([model.stem, model.head])))


def test_zero_init_residual_basic_block_resnet_is_its_shortcuts_and_keeps_the_projection():
    torch.manual_seed(0)
    model = SmallResNet()
    projection = snapshot(model.blocks[1].downsample)
    changes = init.apply(model, "zero-residual")
    assert changes.changed == tuple(f"blocks.{i}.bn2.{p}" for i in range(3) for p in ("weight", "bias"))
    assert changes.skipped == ()
    assert same_state(projection, snapshot(model.blocks[1].downsample))
    x = gaussian(4, 3, 8, 8, seed=2)
    with torch.no_grad():
        assert torch.equal(model(x), model.without_branches(x))
        assert torch.equal(model.eval()(x), model.without_branches(x))


def test_zero_init_residual_layer_scale_attention_and_skipped_branches():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Linear(8, 8)
            self.f1, self.f2 = nn.Linear(8, 8), nn.Linear(8, 8)
            self.gamma = nn.Parameter(torch.ones(8))
            self.norm = nn.LayerNorm(8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.gate = nn.Linear(8, 8)
            self.shared = nn.Linear(8, 8)

        def forward(self, x):
            x = self.stem(x)
            x = x + self.gamma.view(1, 1, -1) * F.gelu(self.f2(self.f1(x)))     # layer scale: zero gamma
            h = self.norm(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]                   # zero out_proj
            x = x + torch.sigmoid(self.gate(x))                                 # sigmoid(0) != 0: skipped
            x = x + self.shared(x)
            return x + 0.5 * self.shared(x)                                     # module used twice: skipped

    model = Net()
    x = gaussian(2, 5, 8, seed=3)
    changes = init.apply(model, "zero-residual")
    assert changes.changed == ("gamma", "attn.out_proj.weight", "attn.out_proj.bias")
    reasons = [r for _, r in changes.skipped]
    assert len(reasons) == 3
    assert any("does not map 0 to 0" in r for r in reasons)
    assert sum("called at several places" in r for r in reasons) == 2
    assert torch.count_nonzero(model.gamma) == 0 and torch.count_nonzero(model.attn.out_proj.weight) == 0
    assert torch.count_nonzero(model.f2.weight) > 0
    with torch.no_grad():
        h = model.stem(x)
        h = h + torch.sigmoid(model.gate(h))
        h = h + model.shared(h)
        assert torch.equal(model(x), h + 0.5 * model.shared(h))


def test_zero_init_residual_leaves_a_branch_whose_layer_output_is_also_used_elsewhere():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.head = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            h = self.lin(x)
            self.aux = h.pow(2).mean()     # a side output (an auxiliary loss) that zeroing lin would change
            return self.head(x + torch.relu(h))

    model = Net()
    before = snapshot(model)
    changes = init.apply(model, "zero-residual")
    assert changes.changed == ()
    [(merge, reason)] = changes.skipped
    assert merge == "add" and "'lin' also feeds other ops" in reason
    assert same_state(before, snapshot(model))


def test_zero_init_residual_refuses_plain_and_untraceable_models():
    plain = mlp(2, 8)
    before = snapshot(plain)
    with pytest.raises(InitError, match=r"^zero_init_residual_: no residual connections found in Sequential"):
        init.zero_init_residual_(plain)
    assert same_state(before, snapshot(plain))
    with pytest.raises(InitError, match="torch.fx cannot trace Untraceable") as info:
        init.zero_init_residual_(Untraceable())
    assert info.value.kind == "input"


# --------------------------------------------------------------------------- the common contract


def _orthogonal_model():
    return nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 4))


CASES = [
    ("orthogonal", _orthogonal_model, init.orthogonal_),
    ("looks-linear", lambda: mlp(3, 8, norm="batch"), init.looks_linear_),
    ("zero-residual", SmallResNet, init.zero_init_residual_),
]


@pytest.mark.parametrize("change, build, fn", CASES, ids=[c[0] for c in CASES])
def test_init_changes_only_parameter_values_and_returns_the_same_model(change, build, fn):
    torch.manual_seed(0)
    model = build()
    model.train()
    first = next(iter(model.children()))
    first.eval()                                               # a mixed mode must survive
    frozen = next(model.parameters())
    frozen.requires_grad_(False)
    for b in model.buffers():
        if b.is_floating_point():
            b.add_(0.25)                                       # non-default buffers must survive
    buffers = [(name, b.clone()) for name, b in model.named_buffers()]
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    modules = list(model.modules())
    params = {name: p for name, p in model.named_parameters()}
    before = snapshot(model)
    kwargs = {} if change == "zero-residual" else {"generator": gen()}
    rng = torch.get_rng_state()
    assert fn(model, **kwargs) is model
    assert torch.equal(rng, torch.get_rng_state())             # drew nothing from the global RNG
    assert list(model.modules()) == modules                    # no module replaced
    assert {name: p for name, p in model.named_parameters()} == params  # same Parameter objects
    assert all(torch.equal(b, dict(model.named_buffers())[name]) for name, b in buffers)
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert not same_state(before, snapshot(model))


@pytest.mark.parametrize("change, build", [(c[0], c[1]) for c in CASES[:2]], ids=[c[0] for c in CASES[:2]])
def test_same_generator_seed_gives_identical_parameters_and_the_global_rng_is_the_default(change, build):
    torch.manual_seed(0)
    models = [build() for _ in range(4)]
    for m in models[1:]:
        m.load_state_dict(models[0].state_dict())
    init.apply(models[0], change, generator=gen(7))
    init.apply(models[1], change, generator=gen(7))
    init.apply(models[2], change, generator=gen(8))
    assert same_state(snapshot(models[0]), snapshot(models[1]))
    assert not same_state(snapshot(models[0]), snapshot(models[2]))
    torch.manual_seed(5)
    init.apply(models[3], change)
    reference = build()
    reference.load_state_dict(models[0].state_dict())
    torch.manual_seed(5)
    init.apply(reference, change)
    assert same_state(snapshot(models[3]), snapshot(reference))


def test_plan_reports_the_same_changes_as_apply_without_changing_anything():
    torch.manual_seed(0)
    for change, build, _ in CASES:
        model = build()
        before = snapshot(model)
        planned = init.plan(model, change)
        assert same_state(before, snapshot(model))
        assert isinstance(planned, InitChanges) and planned.changed
        assert init.apply(model, change, generator=gen()) == planned
    with pytest.raises(InitError, match="unknown initialisation 'fixup'"):
        init.plan(mlp(1, 4), "fixup")
    assert init.CHANGES == ("orthogonal", "looks-linear", "zero-residual")
