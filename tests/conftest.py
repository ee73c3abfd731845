import ast
import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every gradlint the suite runs (the fixture's, pre-commit's, the CI recipes') probes afresh: a report cache
# shared between tests would make them depend on their order.  tests/test_cache.py turns it back on.
os.environ.setdefault("GRADLINT_NO_CACHE", "1")
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCHEMA = ROOT / "docs" / "schema" / "gradlint-1.json"


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true",
                     help="rewrite the golden files of tests/golden/ from the renderers (then review the diff)")


@pytest.fixture
def regen_golden(request) -> bool:
    return request.config.getoption("--regen-golden")


@functools.lru_cache(maxsize=1)
def schema_validator() -> jsonschema.Draft202012Validator:
    """docs/schema/gradlint-1.json, which every `--format json` document a test reads must satisfy."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def pytest_collection_modifyitems(items):
    """Tiers: `cli` for tests that run the command line in a subprocess (the `gradlint` fixture; others
    are marked by hand), `probe` for the tests that need torch (a module marked probe as a whole, or one
    test).  `python -m pytest -m "not probe and not cli"` runs the torch-free tier (rules on frozen
    reports, findings snapshots, configuration, renderers, rule docs) in seconds, and runs where torch
    is not installed: tests/test_tiers.py checks it through tests/without_torch.py."""
    for item in items:
        if "gradlint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cli)


class Run:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self):
        doc = json.loads(self.stdout)
        if isinstance(doc, dict) and doc.get("schema") == "gradlint/1":
            schema_validator().validate(doc)
        return doc


@pytest.fixture
def gradlint():
    """Run the real command line in a subprocess, from the repository root."""

    def run(*args: str, env: dict[str, str | None] | None = None, cwd: Path = ROOT, timeout: float = 300) -> Run:
        """``env`` overrides the environment; a None value removes the variable (e.g. NO_COLOR).  ``cwd``:
        where to run (default: the repository root)."""
        # A CI runner's own FORCE_COLOR or job summary must not leak into the run under test.
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "FORCE_COLOR": None, "GITHUB_STEP_SUMMARY": None,
               **(env or {})}
        env = {k: v for k, v in env.items() if v is not None}
        proc = subprocess.run([sys.executable, "-m", "gradlint", *args], cwd=cwd, capture_output=True,
                              text=True, env=env, timeout=timeout)
        return Run(proc)

    return run


def _torch_importable() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # blocked, as tests/without_torch.py does
        return False


TORCH = _torch_importable()


def _probe_module(path: Path) -> bool:
    """Whether a test module is marked probe as a whole (``pytestmark = pytest.mark.probe``, alone or in a list)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return "pytest.mark.probe" in ast.unparse(node.value)
    return False


def pytest_ignore_collect(collection_path, config):
    """Without torch, a module marked probe as a whole is not imported (all of it needs torch); every other
    test module must import without torch, and its probe tests import torch inside them."""
    if not TORCH and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return True if _probe_module(Path(collection_path)) else None
    return None
