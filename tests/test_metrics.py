"""Tests that pin the metric contract (docs/metrics.md) on real models.

The reference numbers are computed independently of the probe: exact Jacobians via
``torch.autograd.functional.jacobian`` in float64 on a copy of the model (in train mode, on the same
input batch, the whole batch treated as one point), closed-form statistics, or constructions whose
GSC is known exactly.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import random

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.functional import jacobian

import gradlint
from gradlint import stats

pytestmark = pytest.mark.probe


# --------------------------------------------------------------------------- helpers


def gaussian(*shape: int, seed: int) -> torch.Tensor:
    """A standard Gaussian from a private generator (leaves the global RNG alone)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def orthogonal(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    q = torch.empty(rows, cols)
    nn.init.orthogonal_(q, generator=gen)
    return q


def mlp(act: str, *, batchnorm: bool = False, width: int = 32, layers: int = 4, seed: int = 1,
        inplace: bool = False) -> nn.Sequential:
    """Linear [-> BatchNorm1d] -> act, ``layers`` Linear layers in all, the last one bare."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(width, width))
        if i < layers - 1:
            if batchnorm:
                mods.append(nn.BatchNorm1d(width))
            mods.append(nn.Tanh() if act == "tanh" else nn.ReLU(inplace=inplace))
    return nn.Sequential(*mods)


def exact_gsc(tail, h: torch.Tensor, y_norm: float) -> float:
    """||dY/dH||_F / sqrt(numel H) * ||H||_F / ||Y||_F from the full Jacobian of Y = tail(H)."""
    h = h.detach()
    J = jacobian(tail, h, vectorize=True)
    return float(J.norm() / math.sqrt(h.numel()) * h.norm() / y_norm)


def sequential_exact_profile(seq: nn.Sequential, x: torch.Tensor) -> dict[str, float]:
    """Exact GSC at the input and after every child, by splitting the Sequential: H = seq[:i](x)."""
    m = copy.deepcopy(seq).double().train()  # the probe's mode; BatchNorm uses batch statistics
    x = x.double()
    with torch.no_grad():
        y_norm = float(m(x).norm())
    out = {}
    for i in range(len(m) + 1):
        with torch.no_grad():
            h = m[:i](x)
        tail = m[i:]
        out["input" if i == 0 else str(i - 1)] = exact_gsc(lambda v, tail=tail: tail(v), h, y_norm)
    return out


def rel_err(a: float, b: float) -> float:
    return abs(a / b - 1.0)


def gscs(report) -> dict[str, float]:
    return {layer.name: layer.gsc for layer in report.layers}


# --------------------------------------------------------------------------- 1. GSC vs exact Jacobian


SEQ_CASES = {
    "tanh": dict(act="tanh"),
    "relu": dict(act="relu"),
    "relu-batchnorm": dict(act="relu", batchnorm=True),
    "tanh-batchnorm": dict(act="tanh", batchnorm=True),
}


def seq_input() -> torch.Tensor:
    return gaussian(64, 32, seed=2)


@functools.lru_cache(maxsize=None)
def seq_exact(case: str) -> dict[str, float]:
    """The exact profile of ``mlp(**SEQ_CASES[case])`` on ``seq_input()`` (deterministic; computed once)."""
    return sequential_exact_profile(mlp(**SEQ_CASES[case]), seq_input())


@pytest.mark.parametrize("case", list(SEQ_CASES))
def test_gsc_matches_exact_jacobian_at_every_node(case):
    model = mlp(**SEQ_CASES[case])
    x = seq_input()
    exact = seq_exact(case)

    # One draw, fixed seed: the single-draw estimator's relative std is about 4% per node here
    # (measured over 60 seeds; unbiased), so 10% holds at seed 0.
    report = gradlint.lint(model, x, seed=0).report
    names = [layer.name for layer in report.layers]
    assert names == list(exact), "every child of the Sequential and the input are recorded, in order"
    errors = {n: rel_err(g, exact[n]) for n, g in gscs(report).items()}
    assert max(errors.values()) < 0.10, errors

    # Eight draws average the estimator: the error shrinks by about sqrt(8); tighten to 5%.
    report8 = gradlint.lint(model, x, seed=0, draws=8).report
    errors8 = {n: rel_err(g, exact[n]) for n, g in gscs(report8).items()}
    assert max(errors8.values()) < 0.05, errors8


def test_gsc_with_inplace_relu_equals_out_of_place():
    """An in-place ReLU overwrites the Linear output it reads: the probe must still measure the
    Linear output, not the rectified value, and give the same numbers as the out-of-place model."""
    plain = mlp("relu", batchnorm=True)
    inplace = mlp("relu", batchnorm=True, inplace=True)
    inplace.load_state_dict(plain.state_dict())
    x = seq_input()
    a = gradlint.lint(plain, x).report
    b = gradlint.lint(inplace, x).report
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
    for la, lb in zip(a.layers, b.layers):
        assert lb.gsc == pytest.approx(la.gsc, rel=1e-6), la.name
        assert lb.sign_diversity == la.sign_diversity, la.name
    exact = seq_exact("relu-batchnorm")
    errors = {n: rel_err(g, exact[n]) for n, g in gscs(b).items()}
    assert max(errors.values()) < 0.10, errors


class FunctionalMLP(nn.Module):
    """Activations as functions (relu, tanh): traced by fx; the input node is named after ``x``."""

    def __init__(self, width: int = 32, layers: int = 4):
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))

    def act(self, i: int, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(h) if i % 2 else F.relu(h)

    def forward(self, x):
        return self.run_from(x, -1)

    def run_from(self, h, k: int):
        """Continue the forward from the output of fcs[k] (k = -1: from the input)."""
        last = len(self.fcs) - 1
        if 0 <= k < last:
            h = self.act(k, h)
        for i in range(k + 1, last + 1):
            h = self.fcs[i](h)
            if i < last:
                h = self.act(i, h)
        return h

    def value_at(self, x, k: int):
        h = x
        for i in range(k + 1):
            h = self.fcs[i](h)
            if i < k:
                h = self.act(i, h)
        return h


class UntraceableMLP(FunctionalMLP):
    """Data-dependent control flow: torch.fx cannot trace it, so the probe falls back to hooks."""

    def run_from(self, h, k: int):
        if float(h.detach().sum()) > -1e30:  # always true, but fx cannot know
            return super().run_from(h, k)
        return h  # pragma: no cover


@pytest.mark.parametrize("cls, trace, input_name", [(FunctionalMLP, "fx", "x"), (UntraceableMLP, "hooks", "x")])
def test_gsc_matches_exact_jacobian_for_custom_modules(cls, trace, input_name):
    torch.manual_seed(3)
    model = cls()
    x = gaussian(64, 32, seed=4)
    report = gradlint.lint(model, x, seed=0).report
    assert report.trace == trace

    m = copy.deepcopy(model).double().train()
    xd = x.double()
    with torch.no_grad():
        y_norm = float(m(xd).norm())
    exact = {input_name: exact_gsc(lambda v: m.run_from(v, -1), xd, y_norm)}
    for k in range(len(m.fcs)):
        with torch.no_grad():
            h = m.value_at(xd, k)
        exact[f"fcs.{k}"] = exact_gsc(lambda v, k=k: m.run_from(v, k), h, y_norm)
    measured = gscs(report)
    errors = {n: rel_err(measured[n], e) for n, e in exact.items()}
    assert max(errors.values()) < 0.10, errors


# --------------------------------------------------------------------------- 2. invariants


@pytest.mark.parametrize("case", list(SEQ_CASES))
def test_gsc_of_output_is_one(case):
    model = mlp(**SEQ_CASES[case])
    report = gradlint.lint(model, seq_input()).report
    out = report.layers[-1]
    assert out.name == str(len(model) - 1) and out.depth == 0
    assert out.gsc == pytest.approx(1.0, abs=1e-6)


def test_orthogonal_linear_net_has_gsc_one_everywhere():
    # For orthogonal square Q, ||Q^T u|| = ||u|| and ||Q h|| = ||h|| exactly: GSC = 1 at every node,
    # with no estimator noise at all.
    gen = torch.Generator().manual_seed(5)
    layers = []
    for _ in range(6):
        lin = nn.Linear(32, 32, bias=False)
        nn.init.orthogonal_(lin.weight, generator=gen)
        layers.append(lin)
    model = nn.Sequential(*layers)
    report = gradlint.lint(model, gaussian(64, 32, seed=6)).report
    assert len(report.layers) == 7
    for layer in report.layers:
        assert layer.gsc == pytest.approx(1.0, abs=1e-5), layer.name
    assert report.summary.explosion_rate == pytest.approx(1.0, abs=1e-5)
    assert report.summary.mean_orthogonality_defect < 1e-5


def test_weight_scale_leaves_gsc_unchanged_in_bias_free_relu_net():
    torch.manual_seed(7)
    mods: list[nn.Module] = []
    for i in range(5):
        mods.append(nn.Linear(32, 32, bias=False))
        if i < 4:
            mods.append(nn.ReLU())
    model = nn.Sequential(*mods)
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        for p in scaled.parameters():
            p.mul_(3.7)
    x = gaussian(64, 32, seed=8)
    a = gscs(gradlint.lint(model, x).report)
    b = gscs(gradlint.lint(scaled, x).report)
    assert a.keys() == b.keys() and len(a) == 10
    for name in a:
        assert b[name] == pytest.approx(a[name], rel=1e-5), name


@pytest.mark.parametrize("case", ["tanh", "relu-batchnorm"])
def test_gsc_is_multiplicative_along_the_spine(case):
    """GSC(A) ~= GSC(A, B) * GSC(B) for spine points A -> B -> Y; GSC(A, B) computed exactly here."""
    model = mlp(**SEQ_CASES[case], layers=6)
    x = gaussian(64, 32, seed=9)
    report = gradlint.lint(model, x, seed=0, draws=8).report
    per = 3 if SEQ_CASES[case].get("batchnorm") else 2  # children per hidden block
    a_idx, b_idx = 0, 3 * per  # A: output of the first Linear; B: output of the fourth Linear
    la, lb = report.layer(str(a_idx)), report.layer(str(b_idx))
    assert la.spine and lb.spine and la.depth > lb.depth > 0

    m = copy.deepcopy(model).double().train()
    xd = x.double()
    with torch.no_grad():
        a = m[: a_idx + 1](xd)
        b = m[a_idx + 1: b_idx + 1](a)
    mid = m[a_idx + 1: b_idx + 1]
    gsc_ab = exact_gsc(lambda v: mid(v), a, float(b.norm()))
    assert la.gsc == pytest.approx(gsc_ab * lb.gsc, rel=0.15)


# --------------------------------------------------------------------------- 3. paper MLPs


def paper_mlp(kind: str, *, layers: int = 50, width: int = 100, seed: int = 0) -> nn.Sequential:
    """50 Linear layers of width 100, zero biases, explicit inits (He for ReLU)."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i in range(layers):
        lin = nn.Linear(width, width)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        mods.append(lin)
        if i < layers - 1:
            if kind == "batch-relu":
                mods.append(nn.BatchNorm1d(width))
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def looks_linear_mlp(*, layers: int = 50, width: int = 100, out: int = 50, seed: int = 0) -> nn.Sequential:
    """Looks-linear orthogonal ReLU: first [P; -P], hidden [[A, -A], [-A, A]], output [B, -B].

    With zero biases the net is exactly linear (relu(a) - relu(-a) = a) and orthogonal on the half
    it uses, so its GSC profile is flat: rate 1.
    """
    half = width // 2
    gen = torch.Generator().manual_seed(seed)
    mods: list[nn.Module] = []
    for i in range(layers):
        if i == 0:
            lin = nn.Linear(width, width)
            P = orthogonal(half, width, gen)
            W = torch.cat([P, -P], 0)
        elif i == layers - 1:
            lin = nn.Linear(width, out)
            B = orthogonal(out, half, gen)
            W = torch.cat([B, -B], 1)
        else:
            lin = nn.Linear(width, width)
            A = orthogonal(half, half, gen)
            W = torch.cat([torch.cat([A, -A], 1), torch.cat([-A, A], 1)], 0)
        with torch.no_grad():
            lin.weight.copy_(W)
            lin.bias.zero_()
        mods.append(lin)
        if i < layers - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


@pytest.fixture(scope="module")
def paper_inputs():
    return gaussian(256, 100, seed=10)


def test_batch_relu_mlp_explodes_at_rate_about_1_2(paper_inputs):
    report = gradlint.lint(paper_mlp("batch-relu"), paper_inputs).report
    s = report.summary
    assert s.compositional_depth == 50
    assert s.spine_points == 51  # the input and the 50 Linear outputs
    assert 1.15 <= s.explosion_rate <= 1.25, s.explosion_rate
    assert s.explosion_fit_r2 > 0.9, s.explosion_fit_r2
    assert s.gsc_input > 1e3, s.gsc_input  # the spec's reference: ~6e3
    assert s.gsc_input == report.layer("input").gsc
    assert s.min_sign_diversity > 0.3, s.min_sign_diversity


def test_looks_linear_relu_mlp_does_not_explode(paper_inputs):
    report = gradlint.lint(looks_linear_mlp(), paper_inputs).report
    s = report.summary
    assert s.compositional_depth == 50
    assert 0.99 <= s.explosion_rate <= 1.01, s.explosion_rate
    for layer in report.layers:
        assert layer.gsc == pytest.approx(1.0, rel=0.05), layer.name
    # [[A, -A], [-A, A]] and [P; -P] have squared singular values 2 (half) and 0 (half): defect 1.
    # The output [B, -B] has the smaller side's Gram 2 I: defect 0.  Mean 49 / 50.
    defects = [layer.orthogonality_defect for layer in report.layers if layer.kind == "layer"]
    assert defects[:-1] == pytest.approx([1.0] * 49, abs=1e-5)
    assert defects[-1] < 1e-5
    assert s.mean_orthogonality_defect == pytest.approx(0.98, abs=1e-5)


def test_plain_he_relu_mlp_collapses_its_domain(paper_inputs):
    report = gradlint.lint(paper_mlp("relu"), paper_inputs).report
    assert report.summary.min_sign_diversity < 0.1, report.summary.min_sign_diversity


# --------------------------------------------------------------------------- 4. stats unit tests


def collapse(x: torch.Tensor, **kw):
    kw.setdefault("channels_first", False)
    kw.setdefault("relu_family", True)
    kw.setdefault("saturation", None)
    return stats.collapse(x, torch.relu(x), **kw)


def test_sign_diversity_zero_for_all_positive_input():
    x = gaussian(64, 16, seed=11).abs() + 0.1
    c = collapse(x)
    assert c.sign_diversity == 0.0
    assert c.dead_fraction == 0.0


def test_sign_diversity_half_for_exact_split():
    x = torch.cat([torch.full((32, 8), 1.5), torch.full((32, 8), -0.5)], 0)
    x = x[torch.randperm(64, generator=torch.Generator().manual_seed(12))]
    assert collapse(x).sign_diversity == 0.5


def test_sign_diversity_of_symmetric_gaussian_at_its_noise_floor():
    b = 64
    c = collapse(gaussian(b, 2000, seed=13))
    assert c.samples == b and c.units == 2000
    assert c.sign_diversity == pytest.approx(0.5 - 1 / math.sqrt(2 * math.pi * b), abs=0.03)


def test_collapse_units_are_channels_after_convolutions():
    # Channel 0 always positive, channel 1 split exactly in half over batch x positions.
    x = torch.ones(4, 2, 3, 3)
    x[:2, 1] = -1.0
    c = collapse(x, channels_first=True)
    assert c.units == 2 and c.samples == 4 * 9
    assert c.sign_diversity == pytest.approx(0.25)


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_orthogonality_defect_zero_for_orthogonal(scale):
    q = orthogonal(64, 64, torch.Generator().manual_seed(14)).double() * scale
    assert stats.orthogonality_defect(q) < 1e-6
    wide = orthogonal(30, 90, torch.Generator().manual_seed(15)).double() * scale  # orthonormal rows
    assert stats.orthogonality_defect(wide) < 1e-6
    assert stats.orthogonality_defect(wide.T.contiguous()) < 1e-6


def test_orthogonality_defect_of_gaussian_matrices():
    square = gaussian(200, 200, seed=16)
    assert stats.orthogonality_defect(square) == pytest.approx(1.0, abs=0.15)
    wide = gaussian(50, 400, seed=17)  # k = 50: about sqrt(50 / 400)
    expected = math.sqrt(50 / 400)
    assert stats.orthogonality_defect(wide) == pytest.approx(expected, abs=0.05)
    assert stats.orthogonality_defect(wide.T.contiguous()) == pytest.approx(expected, abs=0.05)
    conv = gaussian(16, 8, 3, 3, seed=18)  # reshaped to 16 x 72: about sqrt(16 / 72)
    assert stats.orthogonality_defect(conv) == pytest.approx(math.sqrt(16 / 72), abs=0.1)


def test_explosion_fit_recovers_exact_rate():
    depths = list(range(11))
    fit = stats.explosion_fit(depths, [2.0 * math.exp(0.1 * d) for d in depths])
    assert fit.rate == pytest.approx(math.exp(0.1), rel=1e-9)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)
    assert fit.points == 11
    flat = stats.explosion_fit(depths, [3.0] * 11)
    assert flat.rate == pytest.approx(1.0) and flat.r2 is None
    assert stats.explosion_fit([0, 1], [1.0, 2.0]) is None


def test_stats_gsc_formula():
    grad = torch.full((4, 5), 2.0)  # RMS 2
    assert stats.gsc(grad, 3.0, 6.0) == pytest.approx(1.0)
    assert stats.gsc(grad, 3.0, 0.0) is None


# --------------------------------------------------------------------------- 5. model left as it was


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.bn = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(32, 8)
        self.fc2.bias.requires_grad_(False)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.bn(self.fc1(x)))))


def snapshot(model: nn.Module) -> dict:
    digest = hashlib.sha256()
    for name, t in model.state_dict().items():
        digest.update(name.encode())
        digest.update(bytes(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).tolist()))
    return {
        "state": digest.hexdigest(),
        "training": [(n, m.training) for n, m in model.named_modules()],
        "requires_grad": [(n, p.requires_grad) for n, p in model.named_parameters()],
        "grads": [(n, p.grad) for n, p in model.named_parameters()],
        "hooks": [(n, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                  for n, m in model.named_modules()],
        "python_rng": random.getstate(),
    }


def frozen_model() -> nn.Module:
    torch.manual_seed(19)
    model = Frozen()
    with torch.no_grad():  # non-trivial running statistics, so a change would show
        model.bn.running_mean.normal_()
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.num_batches_tracked.fill_(7)
    return model.eval()


@pytest.mark.parametrize("inputs", ["given", "inferred"])
def test_model_is_left_exactly_as_before(inputs):
    model = frozen_model()
    x = gaussian(64, 16, seed=20)
    torch.manual_seed(21)
    random.seed(22)
    before = snapshot(model)
    rng = torch.get_rng_state()
    result = gradlint.lint(model, x if inputs == "given" else None)
    assert result.report.trace == "fx"
    assert snapshot(model) == before
    assert not model.training and not model.bn.training
    assert torch.equal(torch.get_rng_state(), rng)


def test_inferred_inputs_leave_torch_rng_unchanged():
    model = frozen_model()
    torch.manual_seed(21)
    rng = torch.get_rng_state()
    gradlint.lint(model)
    assert torch.equal(torch.get_rng_state(), rng)


# --------------------------------------------------------------------------- 6. determinism


@pytest.mark.parametrize("draws", [1, 3])
def test_same_model_and_inputs_give_identical_reports(draws):
    model = frozen_model()  # Dropout is live in the probe's train mode: its mask must be seeded too
    x = gaussian(64, 16, seed=23)
    torch.manual_seed(24)
    first = gradlint.lint(model, x, draws=draws)
    torch.manual_seed(25)  # a different global RNG state must not matter
    second = gradlint.lint(model, x, draws=draws)
    assert first.report == second.report
    assert first == second
    other_seed = gradlint.lint(model, x, draws=draws, seed=1)
    assert other_seed.report != first.report


class _GainConv(nn.Module):
    """A convolution with a per-channel gain on its weight, as timm's ScaledStdConv2d: the parameter the
    probe sees (weight) is non-zero, the effective weight is zero while the gain is."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, channels, 3, 3) * 0.1)
        self.gain = nn.Parameter(torch.zeros(channels, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.weight * self.gain, padding=1)


class _ZeroSources(nn.Module):
    """Three nonlinearities that read zeros: behind a zero-gain convolution (training moves the gain),
    behind a 'none' edge (x * 0), and behind a ReLU whose every input is negative."""

    def __init__(self):
        super().__init__()
        self.conv, self.gained = nn.Conv2d(4, 4, 3, padding=1), _GainConv(4)
        self.after_gain, self.after_none, self.after_dead = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.dead, self.fc = nn.ReLU(), nn.Conv2d(4, 4, 1, bias=False)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        gated = self.after_gain(self.gained(h))
        none = self.after_none(h * 0.0)
        dead = self.after_dead(self.fc(self.dead(-h - 1.0)))
        return h + gated + none + dead


def test_zeros_from_zero_initialised_layers_are_told_from_structural_zeros():
    report = gradlint.lint(_ZeroSources(), (gaussian(8, 4, 6, 6, seed=0),)).report
    zero = {x.name: x.zero_from_init for x in report.layers if x.zero_input}
    assert zero == {"after_gain": True, "after_none": False, "after_dead": False}
    assert [f for f in gradlint.lint(_ZeroSources(), (gaussian(8, 4, 6, 6, seed=0),)).findings
            if f.code == "GL206" and "after_gain" in f.message] == []


class _Recurrent(nn.Module):
    """A recurrent layer as models hold one: its output sequence is the model's output."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


@pytest.mark.parametrize("cell, batch_first", [("RNN", True), ("LSTM", False), ("GRU", True)])
def test_the_gradient_through_time_is_that_of_the_exact_jacobian(cell, batch_first):
    """time_reach^2 estimates ||dh_T/dx_0||_F^2 / ||dh_T/dx_{T-1}||_F^2 summed over the batch, here
    computed exactly from each sample's Jacobian of the layer's last output (samples do not interact);
    the one-cotangent estimate's noise over 128 samples and 16 units is a few percent."""
    torch.manual_seed(0)
    layer = getattr(nn, cell)(6, 16, batch_first=batch_first)
    steps, batch = 7, 128
    time_dim, batch_dim = (1, 0) if batch_first else (0, 1)
    x = gaussian(batch, steps, 6, seed=1) if batch_first else gaussian(steps, batch, 6, seed=1)
    (measured,) = [x for x in gradlint.lint(_Recurrent(layer), (x,)).report.layers if x.time_steps is not None]
    ref = copy.deepcopy(layer).double()
    per_step = torch.zeros(steps, dtype=torch.float64)
    for b in range(batch):
        xb = x.double().narrow(batch_dim, b, 1)
        jb = jacobian(lambda v: ref(v)[0].select(time_dim, steps - 1), xb, vectorize=True)   # (1, 16, *xb.shape)
        per_step += jb.pow(2).sum(dim=[d for d in range(jb.dim()) if d != 2 + time_dim])
    exact = math.sqrt(float(per_step[0] / per_step[-1]))
    assert measured.time_steps == steps
    assert measured.time_reach == pytest.approx(exact, rel=0.15)
    assert measured.time_rate == pytest.approx(measured.time_reach ** (1 / (steps - 1)), rel=1e-12)


def test_a_plain_rnn_forgets_faster_than_an_lstm():
    torch.manual_seed(0)
    reach = {}
    for cell in ("RNN", "LSTM"):
        layer = getattr(nn, cell)(64, 64, batch_first=True)
        (rec,) = [x for x in gradlint.lint(_Recurrent(layer), (gaussian(64, 12, 64, seed=2),)).report.layers
                  if x.time_steps]
        reach[cell] = rec.time_reach
    assert reach["RNN"] < 0.3 * reach["LSTM"]
