"""action.yml, the composite GitHub Action: its inputs and the guard on its upload, and its `run:` steps
(but the install, which needs the network) run as GitHub would on a pull request's checkout, with the
`${{ ... }}` expressions of their `env:` evaluated from the inputs and the lint step's outputs."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from test_ci_recipe import SARIF_SCHEMA, checkout, run_step  # noqa: F401 - checkout is a fixture

ACTION = Path(__file__).resolve().parent.parent / "action.yml"


def action() -> dict:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


def test_the_action_is_composite_and_its_upload_skips_forks():
    doc = action()
    assert doc["runs"]["using"] == "composite"
    assert {"targets", "changed-files", "baseline", "fail-on", "upload-sarif", "torch"} <= set(doc["inputs"])
    steps = doc["runs"]["steps"]
    (upload,) = [s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif")]
    assert "head.repo.full_name == github.repository" in upload["if"] and "inputs.upload-sarif" in upload["if"]
    (cache,) = [s for s in steps if s.get("uses", "").startswith("actions/cache@")]
    # the folder gradlint keeps its reports in when the configuration is at the repository's root
    assert cache["with"]["path"] == ".gradlint_cache" and "inputs.cache" in cache["if"]
    assert steps.index(cache) < next(i for i, s in enumerate(steps) if s.get("id") == "lint")
    for step in steps:           # inputs reach a script through env only: never spliced into its text
        assert "${{" not in step.get("run", ""), step["name"]


def _run(steps: list[dict], work: Path, env: dict, inputs: dict) -> list:
    values = {name: spec.get("default", "") for name, spec in action()["inputs"].items()} | inputs
    output = work.parent / "github-output"
    output.write_text("")
    results = []
    for step in steps:
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)

        def evaluate(text: str) -> str:
            text = re.sub(r"\$\{\{ inputs\.([\w-]+) \}\}", lambda m: values[m.group(1)], str(text))
            return re.sub(r"\$\{\{ steps\.lint\.outputs\.([\w-]+) \}\}", lambda m: outputs.get(m.group(1), ""), text)

        step_env = {**env, "GITHUB_OUTPUT": str(output), **{k: evaluate(v) for k, v in step.get("env", {}).items()}}
        results.append(run_step(step, work, step_env))
    return results


@pytest.mark.cli  # runs the action's gradlint commands
def test_the_action_lints_annotates_and_fails_the_job_from_one_run(checkout):  # noqa: F811 - the fixture
    work, env, summary, change = checkout
    change(36)    # the pull request deepens the stack: GL101 becomes an error
    steps = [s for s in action()["runs"]["steps"] if "run" in s and not s["name"].startswith("Install")]
    lint, annotate, verdict = _run(steps, work, env, {})
    assert lint.returncode == 0, lint.stderr                    # the verdict is the last step's
    sarif = json.loads((work / "gradlint.sarif").read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    commands = annotate.stdout.splitlines()
    assert any(c.startswith("::error file=models/net.py,line=") and "title=gradlint GL101::" in c for c in commands)
    assert len(commands) == len(sarif["runs"][0]["results"])
    assert "`models/net.py:build`: error" in summary.read_text()
    assert verdict.returncode == 1

    summary.write_text("")
    change(12)    # a shallow stack: nothing reaches the default fail-on (error)
    lint, annotate, verdict = _run(steps, work, env, {})
    assert (lint.returncode, verdict.returncode) == (0, 0), lint.stderr
    assert not any(c.startswith("::error") for c in annotate.stdout.splitlines())
    lint, annotate, verdict = _run(steps, work, env, {"fail-on": "info"})
    assert verdict.returncode == 1 and annotate.stdout                # the same run, a stricter gate
