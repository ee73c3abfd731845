"""``gradlint --fix``, ``--unsafe-fixes`` and ``--diff`` on real model files in a temporary repository: the
edits (libcst) keep every other byte, each fix is written only when the probe, run again, no longer finds
its finding and finds nothing new, and ``--diff`` writes nothing."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("libcst")

from gradlint.fix.source import Keyword, Unfixable, insert_init, set_keyword  # noqa: E402

# Conv -> BN three ways (nn., torch.nn., a name imported from torch.nn), with comments, a call over
# several lines, one argument per line with a trailing comma, and bias=True given positionally.
ODD = '''\
"""A small BN net written the way people write them."""
import torch
from torch import nn
from torch.nn import Conv2d   # imported by name


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16,
                      3, padding=1),  # the stem
            nn.BatchNorm2d(16),
            nn.ReLU(),
            torch.nn.Conv2d(
                16,
                16,
                kernel_size=3,
                padding=1,
            ),
            nn.BatchNorm2d(16), nn.ReLU(),   # two on a line
        )
        self.c3 = Conv2d(16, 16, 3, 1, 1, 1, 1, True)
        self.bn3 = nn.BatchNorm2d(16)
        self.head = nn.Linear(16, 10)   # no norm after it: keeps its bias

    def forward(self, x):
        x = self.bn3(self.c3(self.body(x))).relu()
        return self.head(x.mean((2, 3)))


def build():
    # the model gradlint lints
    model = Net()
    return model
'''

ODD_FIXED_LINES = {  # original line -> what it becomes (the trailing-comma call gets a line of its own)
    "                      3, padding=1),  # the stem\n": ["                      3, padding=1, bias=False),  # the stem\n"],
    "                padding=1,\n": ["                padding=1,\n", "                bias=False,\n"],
    "        self.c3 = Conv2d(16, 16, 3, 1, 1, 1, 1, True)\n": ["        self.c3 = Conv2d(16, 16, 3, 1, 1, 1, 1, False)\n"],
}


@pytest.fixture
def repo(tmp_path):
    """A git repository to put model files in."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text) if not text.startswith('"""') else text, encoding="utf-8")
    return path


def only_edits(before: str, after: str) -> dict[str, list[str]]:
    """The lines ``after`` replaced, as {old line: new lines} (lines inserted count as replacing the line
    before them by itself and them); every other byte is checked to be the same."""
    a, b = before.splitlines(True), after.splitlines(True)
    edits = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "insert":
            edits[a[i1 - 1]] = [a[i1 - 1], *b[j1:j2]]
        elif tag != "equal":
            assert tag == "replace" and i2 - i1 == 1, (tag, a[i1:i2], b[j1:j2])
            edits[a[i1]] = b[j1:j2]
    return edits


def codes(run, target: str) -> set[str]:
    (r,) = [r for r in run.json()["results"] if r["target"] == target]
    return {f["code"] for f in r["findings"]}


@pytest.mark.probe
def test_fix_sets_bias_false_and_changes_nothing_else(gradlint, repo):
    path = write(repo, "net.py", ODD)
    run = gradlint("net.py:build", "--fix", "--format", "json", cwd=repo)
    doc = run.json()
    assert run.code == 0, run.stderr
    after = path.read_text(encoding="utf-8")
    assert only_edits(ODD, after) == ODD_FIXED_LINES
    (fix,) = doc["fixes"]
    assert (fix["code"], fix["applied"], fix["safe"], fix["files"], fix["reason"]) == \
        ("GL404", True, True, ["net.py"], None)
    assert "GL404" not in codes(run, "net.py:build")   # the report is of the fixed file
    again = gradlint("net.py:build", "--format", "json", cwd=repo)
    assert "GL404" not in codes(again, "net.py:build") and again.code == 0
    assert not list(repo.glob(".gradlint-fix-*"))   # no temporary file left beside it


@pytest.mark.probe
def test_diff_prints_the_fix_and_writes_nothing(gradlint, repo):
    path = write(repo, "net.py", ODD)
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    run = gradlint("net.py", "--diff", cwd=repo)
    assert run.code == 1, run.stderr
    assert path.read_bytes() == ODD.encode() and path.stat().st_mtime_ns == 1_000_000_000_000_000_000
    assert run.stdout.startswith("--- a/net.py\n+++ b/net.py\n")
    assert "+                bias=False,\n" in run.stdout and "-        self.c3 = Conv2d(16, 16, 3, 1, 1, 1, 1, True)\n" \
        in run.stdout
    assert "would fix GL404 in net.py:build" in run.stderr
    # the diff is what --fix then writes
    fixed = ODD.splitlines(True)
    patched = subprocess.run(["git", "apply", "-"], input=run.stdout, cwd=repo, text=True, capture_output=True,
                             check=False)
    assert patched.returncode == 0, patched.stderr
    assert only_edits("".join(fixed), path.read_text(encoding="utf-8")) == ODD_FIXED_LINES
    clean = gradlint("net.py", "--diff", cwd=repo)   # nothing left to fix: no diff, exit 0
    assert (clean.code, clean.stdout) == (0, "")


DEEP_BN_MLP = """\
import torch.nn as nn


def build():
    layers = []
    for _ in range(20):   # one call builds all twenty Linear layers
        layers += [nn.Linear(64, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(64, 10))
    return model
"""


@pytest.mark.probe
def test_an_unsafe_fix_needs_unsafe_fixes(gradlint, repo):
    path = write(repo, "mlp.py", DEEP_BN_MLP)
    safe = gradlint("mlp.py", "--fix", "--format", "json", cwd=repo)
    assert path.read_text(encoding="utf-8") == DEEP_BN_MLP
    unsafe = {f["code"]: f for f in safe.json()["fixes"]}
    assert "GL301" in unsafe and all(not f["safe"] and not f["applied"] and "--unsafe-fixes" in f["reason"]
                                     for f in unsafe.values())
    assert "GL301" in codes(safe, "mlp.py:build")
    run = gradlint("mlp.py", "--fix", "--unsafe-fixes", "--format", "json", cwd=repo)
    after = path.read_text(encoding="utf-8")
    assert only_edits(DEEP_BN_MLP, after) == {
        "import torch.nn as nn\n": ["import torch.nn as nn\n", "import gradlint.init\n"],
        "    model = nn.Sequential(*layers, nn.Linear(64, 10))\n":
            ["    model = nn.Sequential(*layers, nn.Linear(64, 10))\n", "    gradlint.init.looks_linear_(model)\n"]}
    applied = {f["code"] for f in run.json()["fixes"] if f["applied"]}
    assert "GL301" in applied and not applied & codes(run, "mlp.py:build")


@pytest.mark.probe
def test_a_fix_that_leaves_its_finding_is_not_written(gradlint, repo):
    text = """\
        import torch
        import torch.nn as nn


        def build():
            conv = nn.Conv2d(3, 8, 3, padding=1)
            conv.bias = nn.Parameter(torch.zeros(8))   # the bias comes back whatever the constructor says
            return nn.Sequential(conv, nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(8, 4))
        """
    run, fix = _refused(gradlint, repo, "readd.py", text)
    assert fix["reason"].startswith("the edit did not remove the finding (GL404")
    assert "GL404" in codes(run, "readd.py:build")


def _refused(gradlint, repo, name: str, text: str):
    """``--fix`` on a new file whose one fix must not be written: the file is left byte for byte, and that
    fix is reported as not applied.  The run and the fix."""
    path = write(repo, name, text)
    before = path.read_bytes()
    run = gradlint(name, "--fix", "--format", "json", cwd=repo)
    assert path.read_bytes() == before
    (fix,) = run.json()["fixes"]
    assert not fix["applied"]
    return run, fix


@pytest.mark.probe
def test_a_call_that_also_builds_layers_without_the_finding_is_not_edited(gradlint, repo):
    text = """\
        import torch.nn as nn


        def stage(c_in, c_out, norm):
            layers = [nn.Conv2d(c_in, c_out, 3, padding=1)]   # with and without a norm after it
            return layers + ([nn.BatchNorm2d(c_out)] if norm else []) + [nn.ReLU()]


        def build():
            return nn.Sequential(*stage(3, 8, True), *stage(8, 8, False), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(8, 4))
        """
    _, fix = _refused(gradlint, repo, "shared.py", text)
    assert "also builds 3 of shared.py:build, whose bias no norm cancels" in fix["reason"]


# A stand-in for torchvision: torchvision cannot be installed beside this environment's torch, so a
# package of that name with a resnet18 of our own (a small BN ResNet, the pattern of torchvision's
# BasicBlock) is put in a folder named site-packages, which gradlint treats as an installed package, as it
# does torchvision.  This tests gradlint's half (the construction site inside the package, the call in
# the user's file, the keyword, the re-probe), not torchvision's zero_init_residual itself.
STAND_IN = '''\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return (x + self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))).relu()


def resnet18(*, weights=None, zero_init_residual=False, num_classes=10):
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                        *[Block(16) for _ in range(4)], nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(16, num_classes))
    if zero_init_residual:
        for m in net.modules():
            if isinstance(m, Block):
                nn.init.zeros_(m.bn2.weight)
    return net
'''


@pytest.mark.probe
def test_torchvision_resnets_get_zero_init_residual(gradlint, repo):
    package = repo / "env" / "site-packages" / "torchvision" / "models"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("", encoding="utf-8")
    (package / "__init__.py").write_text(STAND_IN, encoding="utf-8")
    text = """\
        from torchvision.models import resnet18


        def build():
            return resnet18(weights=None,
                            num_classes=10)  # keep the head small
        """
    path = write(repo, "tv.py", text)
    env = {"PYTHONPATH": os.pathsep.join([str(package.parent.parent), os.environ.get("PYTHONPATH", "")])}
    run = gradlint("tv.py", "--fix", "--format", "json", env=env, cwd=repo)
    assert only_edits(textwrap.dedent(text), path.read_text(encoding="utf-8")) == {
        "                    num_classes=10)  # keep the head small\n":
            ["                    num_classes=10, zero_init_residual=True)  # keep the head small\n"]}
    # GL403 was found before the edit (it has a fix entry), and is gone after it
    assert [f["applied"] for f in run.json()["fixes"] if f["code"] == "GL403"] == [True], run.stderr
    assert "GL403" not in codes(run, "tv.py:build")


def test_fix_without_libcst_is_a_one_line_error(gradlint, repo):
    blocked = repo / "blocked"
    (blocked / "libcst").mkdir(parents=True)
    (blocked / "libcst" / "__init__.py").write_text("raise ImportError('libcst is not installed')\n")
    write(repo, "mlp.py", DEEP_BN_MLP)
    env = {"PYTHONPATH": os.pathsep.join([str(blocked), os.environ.get("PYTHONPATH", "")])}
    run = gradlint("mlp.py", "--fix", env=env, cwd=repo)
    assert run.code == 2 and run.stdout == ""
    assert run.stderr == "gradlint: error: --fix needs libcst, which is not installed; pip install 'gradlint[fix]'\n"
    lone = gradlint("mlp.py", "--unsafe-fixes", cwd=repo)
    assert lone.code == 2 and lone.stderr == "gradlint: error: --unsafe-fixes needs --fix or --diff\n"


# --- the edits alone (libcst, no probe) ------------------------------------------------------------------


def test_set_keyword_keeps_layout_and_refuses_what_it_cannot_know():
    src = "x = nn.Sequential(Conv2d(1, 2, 3),  # a\n                  nn.Conv2d(2, 2, 3, bias=flag))\n"
    edit = Keyword(1, ("Conv2d",), "bias", "False", 7, replaces=("True",))
    assert set_keyword(src, edit) == src.replace("Conv2d(1, 2, 3)", "Conv2d(1, 2, 3, bias=False)")
    assert set_keyword(set_keyword(src, edit), edit) == set_keyword(src, edit)   # already so: unchanged
    with pytest.raises(Unfixable, match="bias is given as flag"):
        set_keyword(src, Keyword(2, ("Conv2d",), "bias", "False", 7, replaces=("True",)))
    with pytest.raises(Unfixable, match=r"\*args or \*\*kwargs"):
        set_keyword("nn.Linear(*shape)\n", Keyword(1, ("Linear",), "bias", "False", 2))
    with pytest.raises(Unfixable, match="no call to Linear found at line 1"):
        set_keyword("nn.Conv2d(1, 2, 3)\n", Keyword(1, ("Linear",), "bias", "False", 2))
    crlf = "m = nn.Linear(\r\n    4, 4,\r\n)\r\n"
    assert set_keyword(crlf, Keyword(1, ("Linear",), "bias", "False", 2)) == \
        "m = nn.Linear(\r\n    4, 4, bias=False,\r\n)\r\n"   # after the others, as they are laid out


def test_insert_init_goes_after_construction_in_the_builder_only():
    src = '"""Doc."""\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    pass\n\n\ndef make():\n' \
          '    if False: return nn.Linear(2, 2)\n    def helper():\n        return 1\n    net = Net()\n' \
          '    # hand it back\n    return net\n'
    out = insert_init(src, "make", "gradlint.init.orthogonal_")
    assert out == src.replace("import torch.nn as nn\n", "import torch.nn as nn\nimport gradlint.init\n") \
        .replace("return nn.Linear(2, 2)", "return gradlint.init.orthogonal_(nn.Linear(2, 2))") \
        .replace("    net = Net()\n", "    net = Net()\n    gradlint.init.orthogonal_(net)\n")
    assert insert_init(out, "make", "gradlint.init.orthogonal_") == out
    with pytest.raises(Unfixable, match="no top-level function Net"):
        insert_init(src, "Net", "gradlint.init.orthogonal_")


def test_the_json_fixes_entries_are_described_by_the_schema():
    schema = json.loads((Path(__file__).resolve().parent.parent / "docs" / "schema" / "gradlint-1.json").read_text())
    from gradlint.fix import Fix, Outcome
    from gradlint.render.fixes import as_dict

    entry = as_dict(Outcome(Fix("GL404", "m.py:build", "m.py", 3, True, "bias=False on c"), True))
    item = schema["properties"]["fixes"]["items"]
    assert set(entry) == set(item["required"]) == set(item["properties"])
