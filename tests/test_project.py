"""Project mode: `[tool.gradlint] models`, a bare `gradlint`, and `--changed-files` (what pre-commit runs)."""

import pytest

from gradlint.project import affected, imported_files

PYPROJECT = '''\
[tool.gradlint]
models = ["src/models/net.py:build", "src/models/other.py:Other"]
'''

FILES = {
    # A helper module: functions that need arguments are no models.
    "src/models/blocks.py": "import torch.nn as nn\n\n\ndef block(width):\n"
                            "    return nn.Sequential(nn.Linear(width, width), nn.ReLU())\n",
    # Imports the helper the way a model beside it does (its folder is on sys.path while it is imported).
    "src/models/net.py": "import torch.nn as nn\nfrom blocks import block\n\n\ndef build():\n"
                         "    return nn.Sequential(block(32), block(32), nn.Linear(32, 4))\n",
    "src/models/other.py": "import torch.nn as nn\n\n\nclass Other(nn.Module):\n    def __init__(self):\n"
                           "        super().__init__()\n        self.body = nn.Sequential(nn.Linear(8, 8), nn.Tanh())\n\n"
                           "    def forward(self, x):\n        return self.body(x)\n",
    "src/util.py": "def unrelated():\n    return 1\n",
}


@pytest.fixture
def repo(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def targets(run):
    return [r["target"] for r in run.json()["results"]]


def test_a_bare_gradlint_analyses_the_configured_models(gradlint, repo):
    run = gradlint("--format", "json", cwd=repo)
    assert run.code == 0, run.stderr
    assert targets(run) == ["src/models/net.py:build", "src/models/other.py:Other"]
    # From a subfolder too: the configuration is found upward and its paths are relative to it.
    run = gradlint("--format", "json", cwd=repo / "src")
    assert targets(run) == ["models/net.py:build", "models/other.py:Other"]


def test_a_bare_gradlint_without_configured_models_says_what_to_do(gradlint, tmp_path):
    (tmp_path / ".git").mkdir()
    run = gradlint(cwd=tmp_path)
    assert run.code == 2 and run.stdout == ""
    assert run.stderr.strip() == ("gradlint: error: no targets, and no models listed in [tool.gradlint] models; "
                                  "give a file to lint (gradlint model.py) or list models there")


def test_a_changed_helper_runs_the_models_that_import_it_and_is_skipped_itself(gradlint, repo):
    run = gradlint("--changed-files", "src/models/blocks.py", "--format", "json", cwd=repo)
    assert run.code == 0, run.stderr
    assert targets(run) == ["src/models/net.py:build"]
    assert "gradlint: note: src/models/blocks.py: no model in it; skipped" in run.stderr


def test_a_changed_model_file_runs_its_configured_model_once(gradlint, repo):
    run = gradlint("--changed-files", "src/models/other.py", "./src/models/net.py", "--format", "json", cwd=repo)
    assert run.code == 0, run.stderr
    assert targets(run) == ["src/models/other.py:Other", "src/models/net.py:build"]
    assert "note" not in run.stderr


def test_changed_files_without_models_or_importers_are_all_skipped(gradlint, repo):
    run = gradlint("--changed-files", "src/util.py", cwd=repo)
    assert run.code == 0
    assert run.stderr.strip() == "gradlint: note: src/util.py: no model in it; skipped"


def test_a_changed_file_that_fails_to_import_is_an_error_not_a_skip(gradlint, repo):
    (repo / "src" / "broken.py").write_text("import torch.nn as nn\nraise RuntimeError('half-written')\n")
    run = gradlint("--changed-files", "src/broken.py", cwd=repo)
    assert run.code == 2
    assert "src/broken.py:2: import failed: RuntimeError: half-written" in run.stderr


def test_a_changed_file_outside_the_configured_models_that_defines_one_is_analysed(gradlint, repo):
    (repo / "scratch.py").write_text(FILES["src/models/other.py"])
    run = gradlint("--changed-files", "scratch.py", "--format", "json", cwd=repo)
    assert targets(run) == ["scratch.py:Other"]


def test_the_import_closure_follows_sibling_package_and_relative_imports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pkg = tmp_path / "pkg"
    (pkg / "layers").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "layers" / "__init__.py").write_text("from .conv import Conv\n")
    (pkg / "layers" / "conv.py").write_text("from ..util import helper\n")
    (pkg / "util.py").write_text("import torch\n")
    (pkg / "model.py").write_text("from pkg.layers import Conv\nimport os, json\n")
    (tmp_path / "outside.py").write_text("")
    closure = imported_files((pkg / "model.py").resolve(), tmp_path.resolve())
    assert {p.relative_to(tmp_path.resolve()).as_posix() for p in closure} == {
        "pkg/__init__.py", "pkg/layers/__init__.py", "pkg/layers/conv.py", "pkg/util.py"}
    assert affected(["pkg/model.py:build", "outside.py"], pkg / "util.py", tmp_path) == ["pkg/model.py:build"]
