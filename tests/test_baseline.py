"""Baselines with a metric ratchet, through the real command line on real models.

The model is the paper's plain Linear -> BatchNorm -> ReLU stack, whose GSC grows about 1.2x per layer:
its depth is the knob.  4 layers are healthy, 30 explode past the warning threshold (GSC ~460), 33
stay a warning with a GSC ~1.7x larger (worse beyond the 25% tolerance at the same severity).
"""

import json

import pytest

from gradlint.baseline import is_worse
from model_files import PLAIN_STACK_FILE as MODEL


@pytest.fixture
def project(tmp_path):
    """A repository with one model file, src/models/plain.py, whose depth a test sets."""
    (tmp_path / ".git").mkdir()  # the repository root the baseline's paths are relative to
    (tmp_path / "src" / "models").mkdir(parents=True)

    def write(depth: int, header: str = "") -> str:
        (tmp_path / "src" / "models" / "plain.py").write_text(header + MODEL.format(depth=depth))
        return "src/models/plain.py"

    write.root = tmp_path
    return write


def lint(gradlint, project, *args):
    return gradlint(*args, cwd=project.root)


def test_the_baseline_is_versioned_and_keyed_without_line_numbers(gradlint, project):
    target = project(30)
    run = lint(gradlint, project, target, "--write-baseline")
    assert run.code == 0, run.stderr   # recording is not a verdict, even with findings
    assert "wrote .gradlint-baseline.json" in run.stderr
    doc = json.loads((project.root / ".gradlint-baseline.json").read_text())
    assert doc["version"] == 1
    assert list(doc["models"]) == ["src/models/plain.py:build"]
    model = doc["models"]["src/models/plain.py:build"]
    assert {"code": "GL101", "layer": "0", "severity": "warning"}.items() <= next(
        f for f in model["findings"] if f["code"] == "GL101").items()
    assert 300 < model["metrics"]["gsc_input"] < 700
    assert "line" not in json.dumps(doc)


def test_an_unchanged_model_passes_and_its_findings_are_absorbed(gradlint, project):
    target = project(30)
    assert lint(gradlint, project, target, "--fail-on", "info").code == 1   # flagged without the baseline
    lint(gradlint, project, target, "--write-baseline", "base.json")
    run = lint(gradlint, project, target, "--baseline", "base.json", "--fail-on", "info")
    assert run.code == 0, run.stderr
    assert "baseline base.json: 4 findings absorbed, 0 new, 0 worse (tolerance 25%), 0 stale" in run.stderr


def test_a_new_finding_fails(gradlint, project):
    lint(gradlint, project, project(4), "--write-baseline", "base.json")
    run = lint(gradlint, project, project(30), "--baseline", "base.json", "--fail-on", "warning")
    assert run.code == 1
    # GL101, GL401, GL301 are new; GL404 (the plain depth, 4 then 30) got worse
    assert "0 findings absorbed, 3 new, 1 worse" in run.stderr
    doc = lint(gradlint, project, project(30), "--baseline", "base.json", "--format", "json").json()
    assert sorted(f["code"] for f in doc["baseline"]["new"]) == ["GL101", "GL301", "GL401"]


def test_a_value_worse_beyond_the_tolerance_fails_at_the_same_severity(gradlint, project):
    lint(gradlint, project, project(30), "--write-baseline", "base.json")
    run = lint(gradlint, project, project(33), "--baseline", "base.json", "--fail-on", "warning")
    assert run.code == 1, run.stderr
    doc = lint(gradlint, project, project(33), "--baseline", "base.json", "--format", "json").json()
    worse = {f["code"]: f for f in doc["baseline"]["worse"]}
    assert worse["GL101"]["severity"] == "warning"   # already flagged, and it got worse
    assert worse["GL101"]["value"] > 1.25 * worse["GL101"]["baseline_value"]
    model = doc["baseline"]["models"]["src/models/plain.py:build"]
    assert "gsc_input" in model["regressed"]
    # The same run within the tolerance (here: a baseline written at depth 33) passes.
    lint(gradlint, project, project(33), "--write-baseline", "base.json")
    assert lint(gradlint, project, project(33), "--baseline", "base.json", "--fail-on", "warning").code == 0


def test_a_fixed_finding_is_reported_stale(gradlint, project):
    lint(gradlint, project, project(30), "--write-baseline", "base.json")
    run = lint(gradlint, project, project(4), "--baseline", "base.json", "--fail-on", "info")
    assert run.code == 0, run.stderr
    assert "1 finding absorbed, 0 new, 0 worse (tolerance 25%), 3 stale" in run.stderr
    doc = lint(gradlint, project, project(4), "--baseline", "base.json", "--format", "json").json()
    assert sorted(e["code"] for e in doc["baseline"]["stale"]) == ["GL101", "GL301", "GL401"]


def test_lines_moving_in_the_file_do_not_invalidate_entries(gradlint, project):
    target = project(30)
    lint(gradlint, project, target, "--write-baseline", "base.json")
    before = lint(gradlint, project, target, "--format", "json").json()["results"][0]["line"]
    project(30, header='"""Plain stack.\n\nMoved down by this docstring and a helper."""\n\n\ndef helper():\n'
                       '    return 1\n\n\n')
    after = lint(gradlint, project, target, "--format", "json").json()["results"][0]["line"]
    assert after == before + 9
    run = lint(gradlint, project, target, "--baseline", "base.json", "--fail-on", "info")
    assert run.code == 0, run.stderr
    assert "4 findings absorbed, 0 new, 0 worse (tolerance 25%), 0 stale" in run.stderr


def test_a_model_no_longer_analysed_is_named(gradlint, project):
    lint(gradlint, project, project(4), "--write-baseline", "base.json")
    (project.root / "other.py").write_text(MODEL.format(depth=4))
    run = lint(gradlint, project, "other.py", "--baseline", "base.json")
    assert run.code == 0
    assert "not analysed now: src/models/plain.py:build" in run.stderr


@pytest.mark.parametrize("content, says", [
    (None, "cannot read the baseline"),
    ("{not json", "not a gradlint baseline (invalid JSON at line 1)"),
    ('{"version": 99, "models": {}}', "not a version 1 gradlint baseline"),
])
def test_a_bad_baseline_is_a_one_line_error(gradlint, project, content, says):
    if content is not None:
        (project.root / "base.json").write_text(content)
    run = lint(gradlint, project, project(4), "--baseline", "base.json")
    assert run.code == 2
    assert run.stdout == ""   # never a report presented as complete
    assert run.stderr.strip().splitlines()[-1].startswith("gradlint: error: base.json: ")
    assert says in run.stderr and "Traceback" not in run.stderr


def test_writing_and_reading_a_baseline_at_once_is_a_usage_error(gradlint, project):
    run = lint(gradlint, project, project(4), "--write-baseline", "a.json", "--baseline", "b.json")
    assert run.code == 2 and "cannot be used together" in run.stderr


@pytest.mark.parametrize("now, before, direction, worse", [
    (126, 100, "higher", True), (124, 100, "higher", False),      # a GSC: 25% higher is worse
    (0.79, 1.0, "lower", True), (0.81, 1.0, "lower", False),     # a sign diversity: 1/1.25 of it is worse
    (-0.5, -1.0, "higher", True), (None, 1.0, "higher", False),  # negative figures; nothing to compare
    (1.3, 1.02, "away from 1", True), (1.2, 1.02, "away from 1", False),   # the input-side GSC: exploding
    (0.7, 0.9, "away from 1", True), (0.8, 0.9, "away from 1", False),    # ... and vanishing
    (1 / 1.3, 1.02, "away from 1", True),
])
def test_worse_means_beyond_the_tolerance_in_the_bad_direction(now, before, direction, worse):
    assert is_worse(now, before, direction, 0.25) is worse
