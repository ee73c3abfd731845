"""The tiers keep their promises: the torch-free tier runs where torch is not installed, and every
benchmark script the README and the docs name still starts (a script that calls removed APIs once sat
in the README's instructions)."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.probe   # each runs a subprocess for seconds

# Runs every benchmark file in one interpreter: a script with --help (its imports resolve, its options
# parse), a helper module (no __main__ block) by importing it.
_START = textwrap.dedent("""
    import contextlib, io, json, runpy, sys
    sys.path.insert(0, "benchmarks")
    started = {}
    for path in sys.argv[1:]:
        script = "if __name__ == \\"__main__\\"" in open(path, encoding="utf-8").read()
        sys.argv = [path, "--help"]
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                runpy.run_path(path, run_name="__main__" if script else "benchmark_module")
            started[path] = "imported" if not script else "no usage printed"
        except SystemExit as exc:
            started[path] = "usage" if exc.code in (0, None) and "usage:" in out.getvalue() else f"exit {exc.code}"
        except BaseException as exc:
            started[path] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(started))
""")


def test_the_torch_free_tier_runs_without_torch():
    proc = subprocess.run([sys.executable, "tests/without_torch.py", "-q", "-p", "no:cacheprovider",
                           "-m", "not probe and not cli"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 150, tail  # the rule examples and their findings alone are ~120
    assert "error" not in proc.stdout.splitlines()[-1], tail


def test_every_benchmark_script_starts():
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("*.py"))
    proc = subprocess.run([sys.executable, "-c", _START, *files], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    started = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(started) == set(files)
    assert {f: s for f, s in started.items() if s not in ("usage", "imported")} == {}
    assert started["benchmarks/realworld_training.py"] == "imported"   # the training evidence's module


def test_the_trainability_benchmark_s_fast_mode_lints_trains_and_scores(tmp_path):
    """CI's run of the trainability benchmark: one net per family, one seed and rate, 30 steps. The verdict,
    the training outcome and the summary lines all come out, and the JSON rows hold both."""
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, "benchmarks/trainability.py", "--fast", "--workers", "1", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import trainability
    assert {r["net"] for r in rows} == trainability.FAST and len(rows) == 4     # the batch-ReLU MLP on two tasks
    for r in rows:
        assert r["severity"] in ("clean", "info", "warning", "error") and r["loss"] > 0 and 0 <= r["accuracy"] <= 1
    assert "nets that fail to train flagged at warning or above:" in proc.stdout
    assert "nets that train flagged as error:" in proc.stdout
