"""Residual analysis: merges on the spine, dilution, branch share, effective depth (spec: residual structure)."""

import math
import operator

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint import stats
from reference_models import SmallResNet, gaussian, mlp, small_cnn

pytestmark = pytest.mark.probe


def batch_relu_branch(width: int, layers: int, scale: float) -> nn.Module:
    """The paper's k-dilution check: a 6-layer batch-ReLU stack followed by a linear layer, scaled."""
    mods: list[nn.Module] = []
    for _ in range(layers):
        lin = nn.Linear(width, width)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        mods += [lin, nn.BatchNorm1d(width), nn.ReLU()]
    head = nn.Linear(width, width)
    nn.init.normal_(head.weight, std=width ** -0.5)
    nn.init.zeros_(head.bias)
    return nn.Sequential(*mods, head, Scale(scale))


class Scale(nn.Module):
    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return self.alpha * x


class Block(nn.Module):
    def __init__(self, branch: nn.Module, skip: nn.Module | None = None):
        super().__init__()
        self.branch = branch
        self.skip = skip

    def forward(self, x):
        return (x if self.skip is None else self.skip(x)) + self.branch(x)


@pytest.mark.parametrize("alpha", [0.1, 0.3, 1.0, 3.0])
def test_k_dilution_formula_holds_on_a_batch_relu_block(alpha):
    torch.manual_seed(1)
    branch = batch_relu_branch(64, 6, alpha)
    x = gaussian(256, 64, seed=2)
    block = gradlint.lint(Block(branch), x, draws=8).report
    alone = gradlint.lint(branch, x, draws=8).report
    (rb,) = block.residual_blocks
    k = rb.dilution
    gsc_block = block.summary.gsc_input
    gsc_branch = alone.summary.gsc_input
    predicted = math.sqrt((k * k + gsc_branch ** 2) / (k * k + 1))
    assert gsc_branch > 1.5  # the branch itself explodes, so the check has something to dilute
    assert gsc_block == pytest.approx(predicted, rel=0.05)
    # and the branch share is the formula's p = GSC_r^2 / (k^2 + GSC_r^2)
    assert rb.branch_share == pytest.approx(gsc_branch ** 2 / (k * k + gsc_branch ** 2), rel=0.02)


@pytest.mark.parametrize("model, shape", [(lambda: mlp(12, 32), (64, 32)), (small_cnn, (8, 3, 16, 16))])
def test_effective_depth_equals_compositional_depth_on_plain_nets(model, shape):
    torch.manual_seed(0)
    s = gradlint.lint(model(), gaussian(*shape)).report.summary
    assert s.effective_depth == s.compositional_depth
    assert s.effective_depth_p5 == s.effective_depth_p95 == s.compositional_depth


class TwoPath(nn.Module):
    """A projection skip and a two-layer branch, small enough for exact Jacobians."""

    def __init__(self, width: int = 6):
        super().__init__()
        self.proj = nn.Linear(width, width, bias=False)
        self.branch = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))

    def forward(self, x):
        return self.proj(x) + self.branch(x)


def test_branch_share_matches_separate_exact_backward_passes():
    torch.manual_seed(3)
    model = TwoPath().double()
    x = gaussian(5, 6, seed=4).double()
    report = gradlint.lint(model, x, draws=400).report
    (rb,) = report.residual_blocks
    assert (rb.skip, rb.skip_depth, rb.branch_depth) == ("proj", 1, 2)
    # Independent: the exact Jacobian of each path alone, at the same input.
    j_skip = torch.autograd.functional.jacobian(model.proj, x)
    j_branch = torch.autograd.functional.jacobian(model.branch, x)
    skip_sq, branch_sq = float(j_skip.pow(2).sum()), float(j_branch.pow(2).sum())
    assert rb.branch_share == pytest.approx(branch_sq / (skip_sq + branch_sq), rel=0.05)
    # The two paths together make up the block: the full Jacobian is their sum.
    j_all = torch.autograd.functional.jacobian(model, x)
    assert torch.allclose(j_all, j_skip + j_branch)


def test_branch_share_is_zero_for_a_zero_branch_and_one_for_a_zero_skip():
    torch.manual_seed(0)
    model = TwoPath()
    x = gaussian(32, 6)
    with torch.no_grad():
        model.branch[2].weight.zero_()
        model.branch[2].bias.zero_()
    assert gradlint.lint(model, x).report.residual_blocks[0].branch_share == 0.0
    model = TwoPath()
    with torch.no_grad():
        model.proj.weight.zero_()
    assert gradlint.lint(model, x).report.residual_blocks[0].branch_share == 1.0


class OrthogonalResNet(nn.Module):
    """Blocks x + alpha * W x with W orthogonal: every block's branch share is exactly alpha^2 / (1 + alpha^2)."""

    def __init__(self, blocks: int, width: int, alpha: float):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(blocks))
        for lin in self.layers:
            nn.init.orthogonal_(lin.weight)
        self.alpha = alpha

    def forward(self, x):
        for lin in self.layers:
            x = x + self.alpha * lin(x)
        return x


def test_effective_depth_is_the_poisson_binomial_over_branch_shares():
    torch.manual_seed(0)
    n, alpha = 30, 0.7
    report = gradlint.lint(OrthogonalResNet(n, 16, alpha), gaussian(64, 16)).report
    p = alpha ** 2 / (1 + alpha ** 2)
    assert [b.branch_share for b in report.residual_blocks] == pytest.approx([p] * n, rel=1e-4)
    s = report.summary
    assert s.compositional_depth == n
    assert s.effective_depth == pytest.approx(n * p, rel=1e-4)
    # Percentiles of Binomial(n, p), computed directly.
    cdf = [sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(i + 1)) for i in range(n + 1)]
    assert s.effective_depth_p5 == next(i for i, c in enumerate(cdf) if c >= 0.05)
    assert s.effective_depth_p95 == next(i for i, c in enumerate(cdf) if c >= 0.95)


def test_path_length_distribution_mixes_projection_skips():
    dist = stats.effective_depth(2, [(1, 3, 0.5), (0, 2, 0.0), (0, 2, 1.0)])
    # outside 2; block 1 gives 1 or 3 (mean 2); block 2 always skip (0); block 3 always branch (2)
    assert dist.mean == pytest.approx(6.0)
    assert (dist.p5, dist.p95) == (5, 7)


class Merges(nn.Module):
    """The ways users write a residual add."""

    def __init__(self):
        super().__init__()
        self.f = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)) for _ in range(4))

    def forward(self, x):
        x = x + self.f[0](x)
        x = torch.add(x, self.f[1](x))
        y = self.f[2](x)
        y += x
        return operator.add(self.f[3](y), y)


def test_residual_merges_found_in_every_common_form_with_a_branch_share():
    torch.manual_seed(0)
    report = gradlint.lint(Merges(), gaussian(64, 8)).report
    blocks = report.residual_blocks
    assert len(blocks) == 4
    assert all(b.branch_depth == 2 and b.skip_depth == 0 and 0 < b.branch_share < 1 for b in blocks)
    assert report.summary.effective_depth is not None


def test_torchvision_style_resnet_blocks_with_projection_shortcut():
    torch.manual_seed(0)
    report = gradlint.lint(SmallResNet(), gaussian(8, 3, 16, 16)).report
    blocks = report.residual_blocks
    assert [b.skip_depth for b in blocks] == [0, 1, 0]
    assert [b.branch_depth for b in blocks] == [2, 2, 2]
    assert all(b.branch_share is not None and 0 < b.branch_share < 1 for b in blocks)
    s = report.summary
    assert s.compositional_depth == 1 + 6 + 1
    assert 2 < s.effective_depth < s.compositional_depth
    assert s.effective_depth_p5 <= s.effective_depth <= s.effective_depth_p95


def lint_without_split(model, x):
    """The report with the branch-share split turned off."""
    from gradlint.capture import blocks

    original = blocks.split_paths
    try:
        blocks.split_paths = lambda graph: None
        return gradlint.lint(model, x).report
    finally:
        blocks.split_paths = original


def test_residual_probe_leaves_gsc_unchanged():
    """Splitting the block inputs for the branch share must not move any measured number."""
    torch.manual_seed(0)
    model = SmallResNet()
    x = gaussian(8, 3, 16, 16)
    with_split, without = gradlint.lint(model, x).report, lint_without_split(model, x)
    assert [x.gsc for x in with_split.layers] == [x.gsc for x in without.layers]
    assert all(b.branch_share is None for b in without.residual_blocks)
    assert without.summary.effective_depth is None


def test_report_names_pass_through_and_dominant_blocks(gradlint):
    run = gradlint("examples/residual_mlp.py")
    lines = [line.strip() for line in run.stdout.splitlines()]
    depth = next(line for line in lines if line.startswith("depth "))
    assert depth.startswith("depth 50 compositional, 2.") and "(5-95%: 2-4) effective; 24 residual blocks" in depth
    assert not any(line.startswith("branch dominates") for line in lines)  # GL403 decides that, not the renderer
    assert any(line.startswith("pass-through (share < 0.01): blocks.0.add, blocks.1.add") for line in lines)
    data = gradlint("examples/residual_mlp.py", "--format", "json").json()["results"][0]
    assert data["summary"]["effective_depth_p5"] == 2 and data["summary"]["effective_depth_p95"] == 4
    assert all(b["skip_depth"] == 0 and 0 < b["branch_share"] < 0.01 for b in data["residual_blocks"])


class InplaceBranch(nn.Module):
    """The branch rectifies the block input in place, so the skip adds the rectified value."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(16, 16)
        self.fc = nn.Linear(16, 16)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        x = self.stem(x)
        y = self.relu(x)
        return self.head(x + self.fc(y))


def test_a_branch_writing_its_block_input_in_place_gets_no_branch_share():
    """The skip reads what the branch wrote: no split can separate them, so the block is not split."""
    torch.manual_seed(0)
    model, x = InplaceBranch(), gaussian(64, 16)
    with_split, without = gradlint.lint(model, x).report, lint_without_split(model, x)
    assert [x.gsc for x in with_split.layers] == [x.gsc for x in without.layers]
    assert with_split.residual_blocks[0].branch_share is None
    assert with_split.summary.effective_depth is None


def test_rectified_relus_do_not_count_as_collapsed_in_the_summary():
    from reference_models import resnet18_like

    torch.manual_seed(0)
    report = gradlint.lint(resnet18_like(), gaussian(8, 3, 32, 32)).report
    rectified = [x for x in report.layers if x.kind == "nonlinearity" and x.rectified]
    assert rectified and all(x.sign_diversity == 0.0 for x in rectified)  # relu(identity) after a zero branch
    assert report.summary.min_sign_diversity > 0.3


class SharedCell(nn.Module):
    """out = x + A x + C(A x): the branch C reads A's output, which the sum reads too (as the nodes of a
    NAS-Bench-201 cell read each other), so no alias of x can separate the sides of the last add."""

    def __init__(self, width: int = 6):
        super().__init__()
        self.a = nn.Linear(width, width, bias=False)
        self.c = nn.Linear(width, width, bias=False)

    def forward(self, x):
        h = self.a(x)
        return x + h + self.c(h)


def test_sides_that_share_nodes_get_shares_from_their_own_vector_jacobian_products():
    torch.manual_seed(5)
    model = SharedCell().double()
    report = gradlint.lint(model, gaussian(5, 6, seed=6).double(), draws=400).report
    a, c = model.a.weight.detach(), model.c.weight.detach()
    eye = torch.eye(6, dtype=torch.float64)
    # Independent: the exact Jacobian of each side of each add (linear maps: the same for every sample).
    sq = lambda j: float(j.pow(2).sum())  # noqa: E731
    p_outer = sq(c @ a) / (sq(eye + a) + sq(c @ a))     # the last add: (x + A x) against C A x
    p_inner = sq(a) / (sq(eye) + sq(a))                 # the first: x against A x
    blocks = {b.branch: b for b in report.residual_blocks}
    assert blocks["c"].branch_share == pytest.approx(p_outer, rel=0.05)
    assert blocks["a"].branch_share == pytest.approx(p_inner, rel=0.05)
    expected = p_outer * 2 + (1 - p_outer) * p_inner   # C A: 2 layers; x + A x: A's layer with its share
    assert report.summary.effective_depth == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("model, shape", [(lambda: OrthogonalResNet(8, 16, 0.7), (64, 16)),
                                          (lambda: SmallResNet(), (8, 3, 16, 16)), (lambda: TwoPath(), (32, 6))])
def test_vector_jacobian_shares_equal_alias_shares_where_both_apply(model, shape, monkeypatch):
    from gradlint.capture import blocks
    torch.manual_seed(0)
    x = gaussian(*shape)
    aliased = gradlint.lint(model(), x).report
    monkeypatch.setattr(blocks, "ALIASES", False)
    torch.manual_seed(0)
    apart = gradlint.lint(model(), x).report
    assert [b.branch_share for b in apart.residual_blocks] == pytest.approx(
        [b.branch_share for b in aliased.residual_blocks], rel=1e-6, abs=1e-12)
    assert apart.summary.effective_depth == pytest.approx(aliased.summary.effective_depth, rel=1e-6)
    # the rest of the report is the same: the extra backward passes record nothing
    assert [x.gsc for x in apart.layers] == [x.gsc for x in aliased.layers]
