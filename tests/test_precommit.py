"""The pre-commit hook, run by the real `pre-commit` in a temporary git repository.

One healthy model file (a residual MLP) and one exploding one (the paper's 50-layer Linear-BN-ReLU
stack): the hook passes on the first, fails on the second and shows the finding.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pre_commit = pytest.importorskip("pre_commit", reason="pre-commit is in the dev extra")
pytestmark = [pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git"),
              pytest.mark.cli]   # every hook run is the command line in a subprocess

# The README's recommended hook: the user's own environment, where torch and their model code are.
LOCAL_HOOK = """\
repos:
  - repo: local
    hooks:
      - id: gradlint
        name: gradlint
        entry: {python} -m gradlint --changed-files
        language: system
        types: [python]
        require_serial: true
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    shutil.copy(ROOT / "examples" / "residual_mlp.py", repo / "healthy.py")
    shutil.copy(ROOT / "examples" / "deep_mlp.py", repo / "exploding.py")
    (repo / "helpers.py").write_text("def scale(x, factor):\n    return x * factor\n")
    (repo / ".pre-commit-config.yaml").write_text(LOCAL_HOOK.format(python=sys.executable))
    git(repo, "add", ".")  # pre-commit refuses to run with an unstaged configuration
    return repo


def pre_commit_run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(repo.parent / "pre-commit-home"), "NO_COLOR": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", *args, "--color", "never"], cwd=repo,
                          capture_output=True, text=True, env=env, timeout=600)


def test_the_hook_passes_on_a_healthy_model(repo):
    run = pre_commit_run(repo, "run", "gradlint", "--files", "healthy.py", "helpers.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "gradlint" in run.stdout and "Passed" in run.stdout
    assert "Failed" not in run.stdout


def test_the_hook_fails_on_an_exploding_model_and_shows_why(repo):
    run = pre_commit_run(repo, "run", "gradlint", "--files", "exploding.py", "healthy.py")
    assert run.returncode == 1
    assert "Failed" in run.stdout and "exit code: 1" in run.stdout
    assert "exploding.py:deep_mlp  ERROR" in run.stdout
    assert "GL101 exploding-gradients" in run.stdout
    assert "healthy.py:ResidualMLP  CLEAN" in run.stdout   # the healthy file is still reported


def test_the_hook_skips_a_helper_module_with_a_note(repo):
    run = pre_commit_run(repo, "run", "gradlint", "--files", "helpers.py", "--verbose")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "helpers.py: no model in it; skipped" in run.stdout


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="try-repo needs gradlint's own git checkout")
def test_the_published_hook_definition_runs(repo):
    """`.pre-commit-hooks.yaml` as a user's `repo: https://.../gradlint` gets it (try-repo: the working tree)."""
    run = pre_commit_run(repo, "try-repo", str(ROOT), "gradlint", "--files", "exploding.py")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "exploding.py:deep_mlp  ERROR" in run.stdout
