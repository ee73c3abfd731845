"""Loading and graph structure: what is discovered, the spine, depths and residual merges."""

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint.graph import GraphNode, analyse
from gradlint.load import LoadFailure, resolve

from reference_models import ResidualMLP, gaussian

pytestmark = pytest.mark.probe


def test_discovery_finds_instances_zero_arg_classes_and_factories_only():
    sources = resolve("tests/fixtures/multi.py")
    assert [s.target for s in sources] == [
        "tests/fixtures/multi.py:tiny", "tests/fixtures/multi.py:make_mlp", "tests/fixtures/multi.py:build_conv"]
    assert all(not isinstance(s, LoadFailure) for s in sources)
    lines = {s.target.rsplit(":", 1)[1]: s.line for s in sources}
    assert lines == {"tiny": 26, "make_mlp": 29, "build_conv": 33}


def test_named_target_and_module_path_target(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "nets.py").write_text(
        "import torch.nn as nn\n\ndef small() -> nn.Module:\n    return nn.Linear(3, 2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    [src] = resolve("pkg.nets:small")
    assert isinstance(src.construct(), nn.Linear)
    [src] = resolve(f"{tmp_path}/pkg/nets.py:small")
    assert src.line == 3


def test_import_leaves_sys_path_as_it_was():
    import sys

    before = list(sys.path)
    resolve("tests/fixtures/multi.py")
    resolve("tests/fixtures/import_error.py")
    assert sys.path == before


def test_spine_is_the_dominators_of_the_output():
    nodes = [GraphNode("x", [], is_input=True), GraphNode("a", ["x"], True), GraphNode("r", ["a"]),
             GraphNode("add", ["x", "r"], is_merge=True), GraphNode("w", []), GraphNode("b", ["add", "w"], True),
             GraphNode("add2", ["b", "add"], is_merge=True), GraphNode("out", ["add2"], True)]
    s = analyse(nodes, ["out"])
    assert s.spine == ["x", "add", "add2", "out"]
    assert s.depth["x"] == 3 and s.depth["add"] == 2 and s.depth["out"] == 0
    assert s.compositional_depth == 3
    assert [(m.id, m.skip, m.branches, m.branch_depth) for m in s.merges] == [
        ("add", "x", ("r",), 1), ("add2", "add", ("b",), 1)]
    assert "w" not in s.reachable  # a parameter starts no path


def test_residual_mlp_spine_and_dilution():
    torch.manual_seed(0)
    model, x = ResidualMLP(blocks=6, scale=0.2), gaussian(64, 100)
    report = gradlint.lint(model, x).report
    merges = [x for x in report.layers if x.kind == "merge"]
    assert len(report.residual_blocks) == 6 and all(m.spine for m in merges)
    assert not any(x.spine for x in report.layers if x.name.startswith("blocks.") and x.kind == "layer")
    assert report.summary.compositional_depth == 2 * 6 + 2
    with torch.no_grad():
        h = model.stem(x)
        expected = []
        for block in model.blocks:
            branch = 0.2 * block(h)
            expected.append(float(h.norm() / branch.norm()))
            h = h + branch
    assert [b.branch_depth for b in report.residual_blocks] == [2] * 6
    assert [b.dilution for b in report.residual_blocks] == pytest.approx(expected, rel=1e-4)
    # stem and head always, each block's two layers with its branch share (small: dilution ~12)
    shares = [b.branch_share for b in report.residual_blocks]
    assert all(0 < p < 0.05 for p in shares)
    assert report.summary.effective_depth == pytest.approx(2 + 2 * sum(shares))


def test_plain_network_effective_depth_is_compositional_depth():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    s = gradlint.lint(model, gaussian(64, 8)).report.summary
    assert s.compositional_depth == 3 and s.effective_depth == 3.0


def test_inplace_relu_does_not_corrupt_the_pre_activation_or_gradient():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    inplace = nn.Sequential(nn.Linear(16, 16), nn.ReLU(inplace=True), nn.Linear(16, 16), nn.ReLU(inplace=True),
                            nn.Linear(16, 4))
    inplace.load_state_dict(plain.state_dict())
    x = gaussian(64, 16)
    a, b = gradlint.lint(plain, x).report, gradlint.lint(inplace, x).report
    assert a.layers == b.layers


def test_functional_layers_and_token_inputs():
    class Tok(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            self.w = nn.Parameter(torch.randn(16, 16) / 4)
            self.out = nn.Linear(16, 3)

        def forward(self, ids):
            h = torch.relu(self.emb(ids) @ self.w)
            return self.out(h).mean(dim=1)

    torch.manual_seed(0)
    result = gradlint.lint(Tok())  # inputs inferred from the Embedding: token ids
    report = result.report
    assert report.probe.input_shapes == ((64, 32),)
    assert report.summary.compositional_depth == 2  # matmul with a parameter counts
    emb = report.layer("emb")
    assert emb.kind == "embedding" and emb.gsc is not None and emb.spine
    relu = next(x for x in report.layers if x.kind == "nonlinearity")
    assert relu.samples == 64 * 32 and relu.sign_diversity > 0.3


def test_functional_layer_weights_give_the_orthogonality_defect():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(16, 16))
            nn.init.orthogonal_(self.w)
            self.v = nn.Parameter(torch.randn(4, 16))

        def forward(self, x):
            h = torch.relu(x @ self.w)
            h = torch.relu(torch.matmul(self.w.t(), h.t()).t())  # a computed weight still counts
            return torch.nn.functional.linear(h, self.v)

    report = gradlint.lint(Functional(), gaussian(64, 16)).report
    layers = [x for x in report.layers if x.kind == "layer"]
    assert [x.name for x in layers] == ["w", "w_1", "v"]  # functional layers are named after their weight
    assert layers[0].orthogonality_defect < 1e-5 and layers[1].orthogonality_defect < 1e-5
    assert layers[2].orthogonality_defect > 0.1
    assert report.summary.compositional_depth == 3


def test_library_files_are_told_apart_by_path_not_by_prefix():
    import os

    from gradlint.paths import is_library_file

    assert is_library_file(torch.nn.__file__) and is_library_file(gradlint.__file__)
    assert is_library_file("<stdin>")
    sibling = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(gradlint.__file__))), "gradlint_models", "n.py")
    assert not is_library_file(sibling)  # starts with the package's path, is not in it


def test_untraceable_zero_head_model_keeps_its_gsc_profile():
    from gradlint.rules.gl003_zero_output_anchor import zero_head_model

    model, (x,) = zero_head_model()

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            if x.sum() > 1e9:  # data-dependent: torch.fx cannot trace it
                x = x * 2
            return self.net(x)

    report = gradlint.lint(Branchy(), x).report
    assert report.trace == "hooks" and report.output_zero
    assert report.summary.gsc_anchor not in (None, "x", "input_0")
    assert report.summary.gsc_input is not None and report.summary.gsc_input != 1.0


def test_data_path_starts_at_the_input_that_meets_the_others_farthest_from_the_output():
    # x -> a -> add1 -> b -> add2 -> out; t -> e (a timestep embedding) feeds both adds, the last next to the output
    nodes = [GraphNode("x", [], is_input=True), GraphNode("t", [], is_input=True), GraphNode("e", ["t"], 2),
             GraphNode("a", ["x"], 1), GraphNode("add1", ["a", "e"], is_merge=True), GraphNode("b", ["add1"], 1),
             GraphNode("add2", ["b", "e"], is_merge=True), GraphNode("out", ["add2"], 1)]
    s = analyse(nodes, ["out"])
    assert s.data_input == "x" and s.streams == {"x": "data", "t": "conditioning"}
    assert s.spine == ["x", "a", "add1", "b", "add2", "out"]  # the timestep's adds are shifts, not merges
    assert not s.merges and s.side == {"t": "t", "e": "t"} and s.compositional_depth == 3
    # named, the other input starts the path
    assert analyse(nodes, ["out"], data="t").data_input == "t"


def test_a_scalar_input_is_never_the_data_path():
    nodes = [GraphNode("t", [], is_input=True, scalar=True), GraphNode("x", [], is_input=True),
             GraphNode("e", ["t"], 3), GraphNode("h", ["x", "e"], 1), GraphNode("out", ["h"], 1)]
    assert analyse(nodes, ["out"]).data_input == "x"


def test_a_long_concatenation_skip_is_descended_and_its_inner_blocks_are_splits():
    # a U-Net level: s = stem(x); inner = block(s) (a residual block) -> down -> up; out = head(cat(inner, s))
    nodes = [GraphNode("x", [], is_input=True), GraphNode("stem", ["x"], 1),
             GraphNode("c1", ["stem"], 1), GraphNode("c2", ["c1"], 1),
             GraphNode("blk", ["stem", "c2"], is_merge=True),
             GraphNode("down", ["blk"], 1), GraphNode("up", ["down"], 1),
             GraphNode("cat", ["up", "stem"], is_concat=True), GraphNode("head", ["cat"], 1)]
    s = analyse(nodes, ["head"])
    assert s.spine == ["x", "stem", "blk", "down", "up", "cat", "head"]
    assert s.nested == {"blk", "down", "up"}
    assert [(sp.start, sp.end, sp.kind) for sp in s.splits] == [("stem", "cat", "concat"), ("stem", "blk", "merge")]
    assert [(m.id, m.block_input, m.branch_depth) for m in s.merges] == [("blk", "stem", 2)]
    # effective depth: the skip's share goes straight to the head, the inner path's through the block
    from gradlint.graph import effective_depth_steps

    shares = {("cat", "up"): 0.25, ("cat", "stem"): 0.75, ("blk", "c2"): 0.5, ("blk", "stem"): 0.5}
    dist = effective_depth_steps(s.chain, shares, {"blk"})
    mean = sum(k * q for k, q in dist.items())
    # 1 (stem) + 1 (head) + 0.25 * (0.5 * 2 + 2 for down and up)
    assert mean == pytest.approx(2 + 0.25 * (0.5 * 2 + 2))
    assert effective_depth_steps(s.chain, {k: v for k, v in shares.items() if k[0] == "cat"}, {"blk"}) is None


def test_dense_concatenations_are_no_plain_stack():
    class Dense(nn.Module):
        def __init__(self, width=8, layers=24):
            super().__init__()
            self.stem = nn.Linear(16, width)
            self.layers = nn.ModuleList(nn.Sequential(nn.LayerNorm(width * (k + 1)), nn.ReLU(),
                                                      nn.Linear(width * (k + 1), width)) for k in range(layers))
            self.head = nn.Linear(width * (layers + 1), 4)

        def forward(self, x):
            feats = [self.stem(x)]
            for layer in self.layers:
                feats.append(layer(torch.cat(feats, -1)))
            return self.head(torch.cat(feats, -1))

    torch.manual_seed(0)
    result = gradlint.lint(Dense(), gaussian(64, 16))
    assert any(x.kind == "concat" and x.spine for x in result.report.layers)
    assert "GL401" not in [f.code for f in result.findings]
