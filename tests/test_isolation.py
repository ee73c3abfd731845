"""Bounded, isolated runs: a model that hangs or kills its process costs only its own result.

Each model runs in a child forked from the command line after torch is imported (gradlint.isolate);
these tests run the real command line on model files that hang in each step and that abort.
"""

import json
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="isolation needs fork (POSIX)")

HEALTHY = '''
class Healthy(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x):
        return self.body(x)
'''

FILES = {
    "import": "import torch.nn as nn\nwhile True:\n    pass\n",
    "construction": "import torch.nn as nn\n\n\ndef build():\n    while True:\n        pass\n",
    "probe": HEALTHY.replace("class Healthy", "class Spins").replace(
        "return self.body(x)", "while True:\n            x = x + 0\n        return x"),
}


@pytest.mark.parametrize("step", ["import", "construction", "probe"])
def test_a_model_that_never_finishes_is_reported_within_the_timeout(gradlint, tmp_path, step):
    source = FILES[step]
    if step == "probe":
        source = "import torch.nn as nn\n" + source
    (tmp_path / "stuck.py").write_text(source)
    started = time.monotonic()
    run = gradlint("stuck.py", "--timeout", "3", "--format", "json", cwd=tmp_path, timeout=120)
    elapsed = time.monotonic() - started
    assert run.code == 2
    # The timeout bounds each step's child; what is left is starting Python and importing torch.
    assert elapsed < 3 + 25, elapsed
    (result,) = run.json()["results"]
    assert result["error"]["kind"] == "timeout"
    words = {"import": "the import of its file", "construction": "the model's construction", "probe": "the probe"}
    assert f"did not finish within 3 s (stopped during {words[step]})" in result["error"]["message"]
    assert f"stopped during {words[step]}" in run.stderr and "Traceback" not in run.stderr


MIXED = "import os\nimport torch.nn as nn\n" + HEALTHY + HEALTHY.replace("class Healthy", "class Aborts").replace(
    "return self.body(x)", "os.abort()") + HEALTHY.replace("class Healthy", "class Spins").replace(
    "return self.body(x)", "while True:\n            x = x + 0\n        return x")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    (folder / "models.py").write_text(MIXED)
    return folder


def test_a_model_that_kills_its_process_costs_only_its_own_result(gradlint, mixed):
    run = gradlint("models.py", "--timeout", "5", "--format", "json", cwd=mixed, timeout=120)
    assert run.code == 2
    results = {r["target"]: r for r in run.json()["results"]}
    assert list(results) == ["models.py:Healthy", "models.py:Aborts", "models.py:Spins"]   # the file's order
    assert results["models.py:Healthy"]["ok"] and results["models.py:Healthy"]["summary"]["gsc_max"] > 0
    assert results["models.py:Aborts"]["error"]["kind"] == "crash"
    assert "its process died (killed by SIGABRT)" in results["models.py:Aborts"]["error"]["message"]
    assert results["models.py:Spins"]["error"]["kind"] == "timeout"
    assert run.json()["summary"]["failed"] == 2


def _sarif(stdout):
    (run,) = json.loads(stdout)["runs"]
    (invocation,) = run["invocations"]
    return not invocation["executionSuccessful"], [n["message"]["text"] for n in invocation["toolExecutionNotifications"]]


@pytest.mark.parametrize("fmt", ["text", "sarif", "github", "markdown"])
def test_every_format_reports_the_survivors_and_the_casualties(gradlint, mixed, fmt):
    run = gradlint("models.py:Healthy", "models.py:Aborts", "--format", fmt, cwd=mixed, timeout=120)
    assert run.code == 2
    died = "models.py:Aborts: not analysed: its process died (killed by SIGABRT)"
    assert died in run.stderr   # every format also says it on stderr
    if fmt == "text":
        assert "models.py:Healthy  CLEAN" in run.stdout
    elif fmt == "sarif":   # the clean model has no results; only the dead one a notification
        failed, notes = _sarif(run.stdout)
        assert failed and len(notes) == 1 and notes[0].startswith(died)
    elif fmt == "github":
        (line,) = run.stdout.splitlines()   # the clean model has no annotation
        assert line.startswith("::error file=models.py,title=gradlint crash error::") and "SIGABRT" in line
    else:
        assert "### `models.py:Healthy`: clean" in run.stdout
        assert "### `models.py:Aborts`: could not be analysed" in run.stdout and died in run.stdout


def test_the_timeout_comes_from_the_configuration_and_the_command_line_beats_it(gradlint, tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.gradlint]\nmodels = ["stuck.py"]\ntimeout = 2\n')
    (tmp_path / "stuck.py").write_text(FILES["construction"])
    run = gradlint("--format", "json", cwd=tmp_path, timeout=120)   # a bare gradlint: the configured models
    assert run.code == 2 and "did not finish within 2 s (stopped during the model's construction)" in run.stderr
    run = gradlint("--timeout", "1.5", cwd=tmp_path, timeout=120)
    assert run.code == 2 and "did not finish within 1.5 s (stopped during the model's construction)" in run.stderr
