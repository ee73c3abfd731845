"""docs/ci.md: the GitHub Actions workflows, checked for their triggers and permissions, and every
`run:` step of them (but the installs, which need the network) run as GitHub would, on a repository
of their own: a base branch with an accepted finding, and pull requests that leave it, make it worse
or add a new one.  The upload step (`uses: github/codeql-action/upload-sarif`) is the one left out."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from model_files import PLAIN_STACK_FILE as MODEL

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ci.md"
SARIF_SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="the recipe runs in a git repository"),
    pytest.mark.skipif(shutil.which("gradlint", path=str(BIN)) is None, reason="needs the gradlint command installed"),
]


def workflows() -> dict[str, dict]:
    """The YAML blocks of docs/ci.md that are workflows (they have jobs), by name."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    docs = [yaml.safe_load(b) for b in blocks]
    return {d["name"]: d for d in docs if isinstance(d, dict) and "jobs" in d}


def steps(workflow: dict) -> list[dict]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def test_the_recipe_has_both_workflows():
    assert set(workflows()) == {"gradlint", "gradlint-baseline"}


@pytest.mark.parametrize("name, permissions", [
    ("gradlint", {"contents": "read", "security-events": "write"}),
    ("gradlint-baseline", {"contents": "read"}),
])
def test_the_workflows_run_on_pull_request_with_only_the_permissions_they_need(name, permissions):
    """A pull request from a fork runs the model code it brings: it must not reach a secret or a write token."""
    workflow = workflows()[name]
    assert set(workflow[True]) == {"pull_request"}   # YAML 1.1 reads the key `on` as true
    assert workflow["permissions"] == permissions
    for job in workflow["jobs"].values():
        assert "permissions" not in job   # nothing widens them per job
        assert job["timeout-minutes"] <= 60
    text = yaml.safe_dump(workflow)
    assert "pull_request_target" not in text and "secrets." not in text and "workflow_run" not in text
    assert "pull_request_target" not in DOC.read_text().replace("(never `pull_request_target`)", "")


def runnable(workflow: dict) -> list[dict]:
    """The steps a test can run: `run:` steps but the installs."""
    return [s for s in steps(workflow) if "run" in s and not s["name"].startswith("Install")]


def test_the_recipe_never_installs_the_unrelated_gradlint_from_pypi():
    """The PyPI name `gradlint` is another project's (diffusion MRI): a bare `pip install gradlint` in the
    recipe would put its `gradlint` command on the runner instead of ours."""
    for workflow in workflows().values():
        for step in steps(workflow):
            for line in step.get("run", "").splitlines():
                if line.startswith("pip install") and "gradlint" in line:
                    assert '"gradlint @ git+https://github.com/gradlint/gradlint@v' in line, line


def test_the_left_out_steps_are_the_installs_and_the_actions():
    for workflow in workflows().values():
        for step in steps(workflow):
            if step not in runnable(workflow):
                assert "uses" in step or all(line.startswith("pip install ") for line in step["run"].splitlines()), step


def run_step(step: dict, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """A `run:` step as GitHub runs it: bash -e -o pipefail, in the checkout."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=600)


PYPROJECT = '[tool.gradlint]\nmodels = ["models/net.py:build"]\nfail-on = "warning"\ntimeout = 300\n'


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path):
    """`actions/checkout` of a pull request: a clone of an origin whose main holds the base branch."""
    origin = tmp_path / "origin"
    (origin / "models").mkdir(parents=True)
    git(origin, "init", "-q", "-b", "main")
    (origin / "pyproject.toml").write_text(PYPROJECT)
    (origin / "models" / "net.py").write_text(MODEL.format(depth=30))
    git(origin, "add", ".")
    git(origin, "commit", "-q", "-m", "base")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    git(work, "checkout", "-q", "-b", "pull-request")
    summary = tmp_path / "step-summary.md"
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_BASE_REF": "main",
           "RUNNER_TEMP": str(runner_temp), "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)

    def change(depth: int, comment: str = "") -> None:
        (work / "models" / "net.py").write_text(comment + MODEL.format(depth=depth))
        git(work, "commit", "-q", "-am", "change")

    return work, env, summary, change


@pytest.mark.cli  # runs the workflow's gradlint commands
def test_the_code_scanning_workflow_writes_valid_sarif_and_a_job_summary(checkout):
    work, env, summary, change = checkout
    change(36)   # the pull request deepens the stack: GL101 becomes an error
    (lint,) = runnable(workflows()["gradlint"])
    run = run_step(lint, work, env)
    assert run.returncode == 1, run.stderr   # the job fails: the finding reaches fail-on
    sarif = json.loads((work / "gradlint.sarif").read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    results = sarif["runs"][0]["results"]
    gl101 = next(r for r in results if r["ruleId"] == "GL101")
    place = gl101["locations"][0]["physicalLocation"]
    assert place["artifactLocation"]["uri"] == "models/net.py"
    lines = (work / "models" / "net.py").read_text().splitlines()
    assert "nn.Linear(width, width)" in lines[place["region"]["startLine"] - 1]   # the layer's own line
    assert summary.read_text().startswith("## gradlint")
    assert "`models/net.py:build`: error" in summary.read_text()


@pytest.mark.cli  # runs the workflow's gradlint commands
def test_the_baseline_workflow_passes_what_the_base_had_and_fails_what_got_worse(checkout):
    work, env, summary, change = checkout
    record, compare, report = runnable(workflows()["gradlint-baseline"])

    change(30, comment="# only a comment changed: every line moved down by one\n")
    runs = [run_step(step, work, env) for step in (record, compare, report)]
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    assert "4 findings absorbed, 0 new, 0 worse (tolerance 25%), 0 stale" in runs[1].stderr
    assert "`models/net.py:build`: warning" in summary.read_text()

    summary.write_text("")
    shutil.rmtree(work.parent / "base")
    git(work, "worktree", "prune")
    change(33)   # the same warning, with a GSC ~1.7x larger: worse beyond the 25% tolerance
    assert run_step(record, work, env).returncode == 0
    run = run_step(compare, work, env)
    assert run.returncode == 1, run.stderr
    assert run_step(report, work, env).returncode == 0   # `if: always()`: the summary is written anyway
    text = summary.read_text()
    assert "worse" in text and "GL101" in text
    assert "before" in text and "after" in text   # the figures of the model that changed
