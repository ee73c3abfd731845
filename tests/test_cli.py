"""The process contract: exit codes, one-line errors, JSON on stdout, determinism."""

import json
import subprocess
import sys

import pytest

BAD = {
    "tests/fixtures/missing_file.py": ("no such file", "import"),
    "tests/fixtures/syntax_error.py": ("syntax error", "import"),
    "tests/fixtures/import_error.py": ("No module named 'not_a_real_module_xyz'", "import"),
    "tests/fixtures/exits.py": ("sys.exit(3)", "import"),
    "tests/fixtures/no_model.py": ("no model found", "import"),
    "tests/fixtures/needs_args.py": ("constructor needs arguments): Net", "import"),
    "tests/fixtures/needs_args.py:Net": ("Net() needs arguments (width)", "construct"),
    "tests/fixtures/multi.py:Nope": ("no object named 'Nope'", "import"),
    "tests/fixtures/bad_forward.py": ("forward pass fails with the inferred input shape [10]", "input"),
    "tests/fixtures/int_output.py": ("not a floating tensor", "forward"),
}


def test_every_bad_input_is_one_line_exit_2_and_other_targets_still_run(gradlint):
    run = gradlint(*BAD, "examples/small_cnn.py", "--format", "json")
    assert run.code == 2
    doc = run.json()
    results = {r["target"]: r for r in doc["results"]}
    for target, (text, kind) in BAD.items():
        discovered = {"tests/fixtures/bad_forward.py": ":Mismatch", "tests/fixtures/int_output.py": ":ArgMax"}
        r = results[target + discovered.get(target, "")]
        assert r["ok"] is False, target
        assert text in r["error"]["message"], (target, r["error"])
        assert r["error"]["kind"] == kind, (target, r["error"])
        assert r["error"]["message"].split(":")[0].startswith("tests/fixtures/"), "the message names the file"
    assert results["examples/small_cnn.py:SmallCNN"]["ok"] is True
    assert doc["summary"]["failed"] == len(BAD)
    errors = [line for line in run.stderr.splitlines() if line.startswith("gradlint: error:")]
    assert len(errors) == len(BAD)
    assert "Traceback" not in run.stderr


def test_debug_shows_the_traceback(gradlint):
    run = gradlint("tests/fixtures/import_error.py", "--debug")
    assert run.code == 2
    assert "Traceback" in run.stderr


def test_model_prints_go_to_stderr_and_stdout_stays_json(gradlint):
    run = gradlint("tests/fixtures/prints.py", "--format", "json")
    assert run.code == 0
    doc = run.json()
    assert doc["results"][0]["ok"] is True
    assert "importing prints.py" in run.stderr and "constructing Noisy" in run.stderr
    assert "forward of Noisy" in run.stderr


def test_examples_json_has_the_output_spec_fields_and_exit_1(gradlint):
    run = gradlint("examples/deep_mlp.py", "examples/tanh_mlp.py", "examples/residual_mlp.py",
                   "examples/small_cnn.py", "--format", "json")
    assert run.code == 1
    doc = run.json()
    assert doc["schema"] == "gradlint/1"
    assert {"targets", "failed", "errors", "warnings", "infos"} <= set(doc["summary"])  # fields may be added
    for r in doc["results"]:
        assert {"target", "ok", "error", "trace", "probe", "summary", "layers", "residual_blocks",
                "findings"} <= set(r)
        assert r["trace"] == "fx"
        assert {"batch_size", "seed", "device", "dtype", "input_shapes"} <= set(r["probe"])
        assert {"compositional_depth", "effective_depth", "gsc_max", "gsc_input", "explosion_rate",
                "explosion_fit_r2", "min_sign_diversity", "min_relative_spread",
                "mean_orthogonality_defect"} <= set(r["summary"])
        for layer in r["layers"]:
            assert {"name", "op", "depth", "spine", "gsc", "preact_std", "relative_spread", "sign_diversity",
                    "nonlinearity", "dead_fraction", "orthogonality_defect"} <= set(layer)
        for f in r["findings"]:
            assert {"code", "name", "severity", "message", "recommendation", "layer", "value", "threshold",
                    "path", "line"} <= set(f)
            assert f["path"].startswith("examples/") and isinstance(f["line"], int)
    by_target = {r["target"]: r for r in doc["results"]}
    deep = by_target["examples/deep_mlp.py:deep_mlp"]
    assert deep["findings"][0]["code"] == "GL101" and deep["findings"][0]["severity"] == "error"
    assert by_target["examples/residual_mlp.py:ResidualMLP"]["findings"] == []
    assert len(by_target["examples/residual_mlp.py:ResidualMLP"]["residual_blocks"]) == 24
    assert by_target["examples/small_cnn.py:SmallCNN"]["findings"] == []
    assert "NaN" not in run.stdout and "Infinity" not in run.stdout


def test_same_command_twice_gives_identical_output(gradlint):
    first = gradlint("examples/deep_mlp.py", "examples/tanh_mlp.py", "--format", "json")
    second = gradlint("examples/deep_mlp.py", "examples/tanh_mlp.py", "--format", "json")
    assert first.stdout == second.stdout
    text1 = gradlint("examples/tanh_mlp.py")
    text2 = gradlint("examples/tanh_mlp.py")
    assert text1.stdout == text2.stdout


def test_clean_model_passes_every_fail_on_level(gradlint):
    # At the lowest level, so at every level: a finding at or above error or warning is also at or above info.
    run = gradlint("examples/residual_mlp.py", "--fail-on", "info", "--format", "json")
    assert run.code == 0 and run.json()["results"][0]["findings"] == []


def test_fail_on_and_exit_zero(gradlint):
    # The trace-fallback fixture has exactly one finding, at info.
    assert gradlint("tests/fixtures/traced_fallback.py").code == 0
    assert gradlint("tests/fixtures/traced_fallback.py", "--fail-on", "info").code == 1
    assert gradlint("examples/deep_mlp.py", "--exit-zero").code == 0
    assert gradlint("tests/fixtures/missing.py", "--exit-zero").code == 2


def test_text_report_has_verdict_summary_table_and_fixes(gradlint):
    run = gradlint("examples/deep_mlp.py", "--seed", "0")
    assert run.code == 1
    out = run.stdout
    assert "examples/deep_mlp.py:deep_mlp  ERROR" in out
    assert "GSC input" in out and "rate 1.2" in out
    assert "layer" in out and "sign div" in out and "defect" in out
    assert "GL101 exploding-gradients" in out and "fix: Add residual connections" in out
    assert "\x1b[" not in out  # NO_COLOR and not a terminal: plain text


def test_check_subcommand_and_input_shape(gradlint):
    run = gradlint("check", "examples/small_cnn.py", "--input-shape", "3,16,16", "--batch-size", "8",
                   "--format", "json")
    assert run.code == 0
    probe = run.json()["results"][0]["probe"]
    assert probe["input_shapes"] == [[8, 3, 16, 16]] and probe["input_source"] == "input-shape"
    bad = gradlint("examples/small_cnn.py", "--input-shape", "3,x,y")
    assert bad.code == 2 and "is not a shape" in bad.stderr


def test_trace_fallback_is_reported_in_json(gradlint):
    doc = gradlint("tests/fixtures/traced_fallback.py", "--format", "json").json()
    r = doc["results"][0]
    assert r["trace"] == "hooks"
    assert [f["code"] for f in r["findings"]] == ["GL001"]
    assert r["summary"]["compositional_depth"] == 3


def test_nonfinite_probe_is_a_finding_not_an_input_error(gradlint):
    run = gradlint("tests/fixtures/nonfinite.py", "--format", "json")
    assert run.code == 1
    r = run.json()["results"][0]
    assert r["ok"] is True
    assert r["findings"][0]["code"] == "GL002" and r["findings"][0]["severity"] == "error"
    json.dumps(r)  # serialisable without NaN


def test_zero_head_anchors_gsc_at_nearest_nonzero_spine_point(gradlint):
    r = gradlint("tests/fixtures/zero_head.py", "--format", "json").json()["results"][0]
    assert r["summary"]["gsc_anchor"] == "body.3"
    assert [f["code"] for f in r["findings"]] == ["GL003"]
    gscs = {x["name"]: x["gsc"] for x in r["layers"]}
    assert gscs["head"] is None
    assert gscs["body.3"] == pytest.approx(1.0, abs=1e-6)
    assert gscs["x"] is not None and gscs["x"] > 0


@pytest.mark.cli  # the command line on a pseudo-terminal, not through the fixture
def test_progress_shows_on_a_terminal_only_for_steps_over_a_second(tmp_path):
    import os
    import pty

    model = tmp_path / "slow.py"
    model.write_text("import time\nimport torch.nn as nn\n\n\ndef build():\n    time.sleep(1.5)\n"
                     "    return nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))\n")
    env = {**os.environ, "NO_COLOR": "1"}
    leader, follower = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "gradlint", str(model), "--format", "json"], stdout=subprocess.PIPE,
                          stderr=follower, env=env, timeout=120)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert "gradlint: analysing" in b"".join(chunks).decode(errors="replace")
    assert json.loads(proc.stdout)["results"][0]["ok"]            # stdout stays valid JSON
    piped = subprocess.run([sys.executable, "-m", "gradlint", str(model)], capture_output=True, text=True,
                           env=env, timeout=120)
    assert "analysing" not in piped.stderr
