import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_collection_modifyitems(items):
    """Tiers: `cli` for tests that run the command line in a subprocess (the `gradlint` fixture), `probe`
    for the rest of a module marked probe.  `python -m pytest -m "not probe and not cli"` runs the
    torch-free tier (rules on frozen reports, configuration parsing, rule docs) in seconds."""
    for item in items:
        if "gradlint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cli)


class Run:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def gradlint():
    """Run the real command line in a subprocess, from the repository root."""

    def run(*args: str) -> Run:
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
        proc = subprocess.run([sys.executable, "-m", "gradlint", *args], cwd=ROOT, capture_output=True,
                              text=True, env=env, timeout=300)
        return Run(proc)

    return run
