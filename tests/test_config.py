"""Configuration: discovery, precedence, rule selection, per-file ignores, rule and probe options, errors.

Most tests exercise gradlint.config directly with small stand-in rules (no torch, no probe); a few run
the real command line on project trees built under tmp_path, each with its own `.git` folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradlint import config
from gradlint.config import ConfigError, Overrides, Probe, Resolver, Selection, Settings, find_config, load
from gradlint.rules import Rule

from conftest import ROOT, Run

MODEL = (ROOT / "examples" / "deep_mlp.py").read_text()  # GL101 error, GL401 warning, GL301 info


def rule(code: str, **options: float) -> type[Rule]:
    return type(f"Rule{code}", (Rule,), {"code": code, "name": f"rule-{code.lower()}", "severity": "warning",
                                         "summary": "", "options": options, "check": lambda self, report: ()})


STAND_INS = (rule("GL001"), rule("GL101", error=1000.0, warning=10.0), rule("GL102"), rule("GL201"),
             rule("GL301"), rule("GL401"), rule("GL901"), rule("ACME101"), rule("ACME901"))


@pytest.fixture
def stand_ins(monkeypatch):
    """The registry replaced by stand-in rules, experimental ones (GL901, ACME901) and a plugin's included."""
    monkeypatch.setattr(config, "known_rules", lambda: STAND_INS)


def codes(settings: Settings, model_file=None) -> list[str]:
    return [r.code for r in settings.rules_for(model_file)]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def gradlint_in(cwd: Path, *args: str) -> Run:
    """The real command line, run from ``cwd`` (on one thread: the probes are small, thread start-up is not)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "OMP_NUM_THREADS": "1"}
    return Run(subprocess.run([sys.executable, "-m", "gradlint", *args], cwd=cwd, capture_output=True, text=True,
                              env=env, timeout=300))


def load_error(tmp_path: Path, text: str, name: str = "pyproject.toml") -> str:
    write(tmp_path, {name: text})
    with pytest.raises(ConfigError) as info:
        load(tmp_path / name)
    assert info.value.kind == "input"
    return str(info.value)


# --- selection -----------------------------------------------------------------------------------

def test_default_selects_every_gl_and_plugin_rule_but_not_experimental_ones(stand_ins):
    assert codes(Settings()) == ["GL001", "GL101", "GL102", "GL201", "GL301", "GL401", "ACME101"]


def test_longest_prefix_wins(stand_ins):
    settings = Settings(selection=Selection(select=("GL", "GL101"), ignore=("GL1",)))
    assert codes(settings) == ["GL001", "GL101", "GL201", "GL301", "GL401"]


def test_ignore_wins_a_tie_and_an_unmatched_code_is_off(stand_ins):
    assert codes(Settings(selection=Selection(select=("GL1", "GL201"), ignore=("GL201",)))) == ["GL101", "GL102"]


def test_experimental_rules_need_their_family_selected(stand_ins):
    assert "GL901" not in codes(Settings(selection=Selection(select=("GL",))))
    assert "GL901" in codes(Settings(selection=Selection(extend_select=("GL9",))))
    assert "GL901" in codes(Settings(selection=Selection(select=("GL901",))))
    assert "ACME901" not in codes(Settings(selection=Selection(extend_select=("ACME",))))
    assert "ACME901" in codes(Settings(selection=Selection(extend_select=("ACME9",))))
    assert "GL901" not in codes(Settings(selection=Selection(extend_select=("GL9",), ignore=("GL9",))))


def test_select_replaces_the_default_and_extend_select_adds(stand_ins):
    assert codes(Settings(selection=Selection(select=("GL2",)))) == ["GL201"]
    assert codes(Settings(selection=Selection(select=("GL2",), extend_select=("ACME1",)))) == ["GL201", "ACME101"]


def test_command_line_select_replaces_the_files_and_its_entries_beat_the_files(stand_ins):
    own = Selection(select=("GL1",), extend_select=("GL3",), ignore=("GL102",))
    on_cli = Settings(selection=own).with_cli(Overrides(selection=Selection(select=("GL2",))))
    assert codes(on_cli) == ["GL201", "GL301"]  # the file's extend-select still adds; its select is gone
    readd = Settings(selection=own).with_cli(Overrides(selection=Selection(extend_select=("GL102",))))
    assert codes(readd) == ["GL101", "GL102", "GL301"]  # same length as the file's ignore, and the CLI wins
    drop = Settings(selection=own).with_cli(Overrides(selection=Selection(ignore=("GL",))))
    assert codes(drop) == []


def test_per_file_ignores_match_the_relative_path_and_the_file_name(stand_ins, tmp_path):
    settings = Settings(folder=tmp_path, per_file_ignores=(("tests/*.py", ("GL1",)), ("conftest.py", ("GL4",))))
    assert codes(settings, tmp_path / "tests" / "model.py") == ["GL001", "GL201", "GL301", "GL401", "ACME101"]
    assert codes(settings, tmp_path / "src" / "conftest.py") == ["GL001", "GL101", "GL102", "GL201", "GL301",
                                                                 "ACME101"]
    assert codes(settings, tmp_path / "model.py") == codes(settings, None) == codes(Settings())
    assert "GL401" not in codes(settings, tmp_path.parent / "elsewhere" / "conftest.py")
    beside = Settings(folder=tmp_path / "ci", per_file_ignores=(("../models/[ab].py", ("GL",)),))
    assert codes(beside, tmp_path / "models" / "a.py") == ["ACME101"]
    assert codes(beside, tmp_path / "models" / "c.py") == codes(Settings())


def test_rule_options_reach_the_rule_instances(stand_ins):
    (gl101,) = [r for r in Settings(rule_options={"GL101": {"error": 1e9}}).rules_for(None) if r.code == "GL101"]
    assert gl101.opts == {"error": 1e9, "warning": 10.0}


# --- probe settings ------------------------------------------------------------------------------

def test_command_line_probe_options_beat_the_files(tmp_path):
    own = Settings(folder=tmp_path, probe=Probe(batch_size=16, seed=3, dtype="float64"))
    merged = own.with_cli(Overrides(probe=Probe(seed=5, draws=2)))
    assert merged.probe_for("model.py:Net", tmp_path / "model.py") == Probe(
        batch_size=16, seed=5, draws=2, dtype="float64")
    assert Settings().probe_for("model.py:Net", None) == Probe(seed=0, draws=1)   # the defaults, filled in


def test_input_shapes_name_a_model_by_file_and_name_or_by_name(tmp_path):
    shapes = (("Net", (10,)), ("models/net.py:Net", (3, 8, 8)), ("pkg.nets:Net", (5,)))
    settings = Settings(folder=tmp_path, probe=Probe(input_shape=(7,), input_shapes=shapes))
    assert settings.input_shape_for("models/net.py:Net", tmp_path / "models" / "net.py") == (3, 8, 8)
    assert settings.input_shape_for("other.py:Net", tmp_path / "other.py") == (10,)
    assert settings.input_shape_for("pkg.nets:Net", tmp_path / "pkg" / "nets.py") == (5,)
    assert settings.input_shape_for("models/net.py:Other", tmp_path / "models" / "net.py") == (7,)
    on_cli = settings.with_cli(Overrides(probe=Probe(input_shape=(4,))))
    assert on_cli.probe_for("models/net.py:Net", tmp_path / "models" / "net.py") == Probe(
        input_shape=(4,)).resolved()


# --- reading files -------------------------------------------------------------------------------

def test_load_reads_every_key(tmp_path):
    write(tmp_path, {"pyproject.toml": """
        [tool.gradlint]
        select = ["GL1", "GL4"]
        extend-select = ["GL301"]
        ignore = ["GL102"]
        fail-on = "warning"
        output-format = "json"
        models = ["src/nets.py:Net", "src/all.py", "pkg.mod:build"]
        timeout = 90
        [tool.gradlint.per-file-ignores]
        "tests/*.py" = ["GL4"]
        [tool.gradlint.probe]
        batch-size = 16
        seed = 3
        draws = 2
        device = "cpu"
        dtype = "float64"
        input-shape = [3, 32, 32]
        [tool.gradlint.probe.input-shapes]
        "nets.py:Net" = [10]
        [tool.gradlint.rules.GL101]
        error = 1e6
        min-r2 = 0.5
    """})
    settings = load(tmp_path / "pyproject.toml")
    assert settings.path == tmp_path / "pyproject.toml" and settings.folder == tmp_path
    assert settings.selection == Selection(("GL1", "GL4"), ("GL301",), ("GL102",))
    assert settings.fail_on == "warning" and settings.output_format == "json"
    assert settings.per_file_ignores == (("tests/*.py", ("GL4",)),)
    assert settings.probe == Probe(16, 3, 2, "cpu", "float64", (3, 32, 32), (("nets.py:Net", (10,)),))
    assert settings.rule_options == {"GL101": {"error": 1e6, "min-r2": 0.5}}
    assert settings.timeout == 90.0
    assert settings.models == ("src/nets.py:Net", "src/all.py", "pkg.mod:build")


def test_unknown_keys_are_errors_naming_the_file_the_full_key_and_a_suggestion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_error(tmp_path / "sub", '[tool.gradlint]\nselct = ["GL1"]\n') == (
        "sub/pyproject.toml: unknown key tool.gradlint.selct (did you mean select?)")
    assert "unknown key tool.gradlint.probe.batch_size (did you mean batch-size?)" in load_error(
        tmp_path, "[tool.gradlint.probe]\nbatch_size = 8\n")
    assert "unknown key tool.gradlint.rules.GL101.eror (did you mean error?)" in load_error(
        tmp_path, "[tool.gradlint.rules.GL101]\neror = 8\n")
    assert load_error(tmp_path, "extend_select = []\n", name="gradlint.toml") == (
        "gradlint.toml: unknown key extend_select (did you mean extend-select?)")


@pytest.mark.parametrize("text, message", [
    ('fail-on = "fatal"', 'tool.gradlint.fail-on: "fatal" is not one of error, warning, info'),
    ('output-format = "xml"', 'tool.gradlint.output-format: "xml" is not one of text, json, sarif, github, markdown, html'),
    ('select = "GL1"', 'tool.gradlint.select: expected a list of rule codes or prefixes'),
    ('ignore = ["GL999"]', 'tool.gradlint.ignore: unknown rule code or prefix "GL999"'),
    ('extend-select = ["gl101"]', 'unknown rule code or prefix "gl101" (did you mean GL101?)'),
    ('per-file-ignores = {"a/*.py" = ["XYZ"]}', 'tool.gradlint.per-file-ignores."a/*.py": unknown rule code'),
    ("probe = {batch-size = 1}", "tool.gradlint.probe.batch-size: 1 is too small; it must be at least 2"),
    ('probe = {seed = "0"}', 'tool.gradlint.probe.seed: expected an integer, got "0"'),
    ("probe = {draws = true}", "tool.gradlint.probe.draws: expected an integer, got true"),
    ('probe = {dtype = "int8"}', 'tool.gradlint.probe.dtype: "int8" is not one of float32'),
    ("probe = {input-shape = [3, 0]}", "tool.gradlint.probe.input-shape: expected positive integers"),
    ('probe = {input-shapes = {":Net" = [3]}}', 'tool.gradlint.probe.input-shapes.":Net": a model is named'),
    ("rules = {GL101 = {error = true}}", "tool.gradlint.rules.GL101.error: expected a number, got true"),
    ("rules = {GL999 = {}}", "unknown rule tool.gradlint.rules.GL999"),
    ("rules = {exploding-gradients = {}}", "rules.exploding-gradients (did you mean GL101?)"),
    ("probe = 3", "tool.gradlint.probe: expected a table, got 3"),
    ('models = "net.py"', 'tool.gradlint.models: expected a list of targets such as ["src/models/resnet.py:build"]'),
    ('models = ["net.py", ""]', "tool.gradlint.models: expected a list of targets"),
    ("timeout = 0", "tool.gradlint.timeout: 0 is not a positive number of seconds"),
    ('timeout = "10"', 'tool.gradlint.timeout: expected a number, got "10"'),
])
def test_bad_values_are_errors_naming_the_file_and_the_key(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    error = load_error(tmp_path, f"[tool.gradlint]\n{text}\n")
    assert error.startswith("pyproject.toml: ") and message in error


def test_a_file_that_is_not_a_usable_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_error(tmp_path, '[project]\nname = "x"\n') == "pyproject.toml: no [tool.gradlint] table"
    assert load_error(tmp_path, "[tool.gradlint\n").startswith("pyproject.toml: invalid TOML: ")
    with pytest.raises(ConfigError, match="missing.toml: cannot read it"):
        load(tmp_path / "missing.toml")


def test_command_line_codes_are_comma_separated_and_checked():
    assert config.parse_codes((), "--select") is None
    assert config.parse_codes(("GL1, GL401", "GL2"), "--select") == ("GL1", "GL401", "GL2")
    with pytest.raises(ConfigError, match=r'^--ignore: unknown rule code or prefix "GL1O1" \(did you mean GL101\?\)'):
        config.parse_codes(("GL1O1",), "--ignore")


# --- discovery -----------------------------------------------------------------------------------

def test_the_nearest_pyproject_with_the_table_wins_and_one_without_it_is_skipped(tmp_path):
    write(tmp_path, {
        ".git/HEAD": "",
        "pyproject.toml": "[tool.gradlint]\n",
        "a/pyproject.toml": '[project]\nname = "a"\n',
        "a/b/pyproject.toml": "[tool.gradlint]\n",
    })
    (tmp_path / "a" / "b" / "c").mkdir()
    assert find_config(tmp_path / "a" / "b" / "c") == tmp_path / "a" / "b" / "pyproject.toml"
    assert find_config(tmp_path / "a") == tmp_path / "pyproject.toml"


def test_the_search_stops_at_the_repository_root(tmp_path):
    write(tmp_path, {"pyproject.toml": "[tool.gradlint]\n", "repo/.git/HEAD": "", "repo/pyproject.toml": ""})
    (tmp_path / "repo" / "src").mkdir()
    assert find_config(tmp_path / "repo" / "src") is None
    assert find_config(tmp_path) == tmp_path / "pyproject.toml"


def test_resolver_reads_each_file_once_and_honours_config_and_isolated(tmp_path, monkeypatch):
    write(tmp_path, {".git/HEAD": "", "pyproject.toml": '[tool.gradlint]\nfail-on = "info"\n',
                     "a/m.py": "", "b/m.py": "", "other.toml": 'fail-on = "warning"\n'})
    monkeypatch.chdir(tmp_path)
    found = Resolver(Overrides(output_format="json"))
    assert found.for_folder(tmp_path / "a") is found.for_folder(tmp_path / "b") is found.for_run()
    assert (found.for_run().fail_on, found.for_run().output_format) == ("info", "json")
    given = Resolver(config="other.toml")
    assert given.for_folder(tmp_path / "a").fail_on == given.for_run().fail_on == "warning"
    assert Resolver(isolated=True).for_folder(tmp_path / "a").fail_on == "error"
    with pytest.raises(ConfigError, match="--config and --isolated cannot be used together"):
        Resolver(config="other.toml", isolated=True)


# --- the command line, end to end ----------------------------------------------------------------

def findings(result: dict) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in result["findings"]}


@pytest.mark.cli
def test_each_target_gets_its_nearest_configuration(tmp_path):
    write(tmp_path, {
        "pyproject.toml": '[tool.gradlint]\nselect = ["GL2"]\n',   # above both repositories: never read
        "proj/.git/HEAD": "",
        "proj/pyproject.toml": """
            [tool.gradlint]
            output-format = "json"
            ignore = ["GL3"]
            per-file-ignores = {"a/*.py" = ["GL4"]}
            probe = {seed = 3}
        """,
        "proj/a/pyproject.toml": '[project]\nname = "a"\n',
        "proj/a/model.py": MODEL,
        "proj/b/pyproject.toml": """
            [tool.gradlint.probe]
            batch-size = 16
            [tool.gradlint.rules.GL101]
            error = 1e9
        """,
        "proj/b/model.py": MODEL,
        "other/.git/HEAD": "",
        "other/model.py": MODEL,
    })
    run = gradlint_in(tmp_path / "proj", "a/model.py", "b/model.py", "../other/model.py")
    assert run.code == 1, run.stderr
    a, b, other = run.json()["results"]  # JSON: output-format from the working directory's configuration
    assert a["probe"]["seed"] == 3 and a["probe"]["batch_size"] == 64
    assert findings(a)["GL101"] == "error" and not any(c.startswith(("GL3", "GL4")) for c in findings(a))
    assert b["probe"]["seed"] == 0 and b["probe"]["batch_size"] == 16  # nearest table only: nothing inherited
    assert findings(b)["GL101"] == "warning" and {"GL301", "GL401"} <= set(findings(b))
    assert other["probe"]["seed"] == 0 and {"GL101", "GL301", "GL401"} <= set(findings(other))


@pytest.mark.cli
def test_command_line_beats_configuration_beats_defaults(tmp_path):
    write(tmp_path, {".git/HEAD": "", "model.py": MODEL, "pyproject.toml": """
        [tool.gradlint]
        select = ["GL3"]
        fail-on = "info"
        output-format = "json"
        probe = {seed = 3}
    """})
    from_file = gradlint_in(tmp_path, "model.py")
    assert from_file.code == 1  # only GL301, an info, and fail-on = "info"
    (result,) = from_file.json()["results"]
    assert "GL301" in findings(result) and all(c.startswith("GL3") for c in findings(result))
    assert result["probe"]["seed"] == 3
    on_cli = gradlint_in(tmp_path, "model.py", "--fail-on", "error", "--select", "GL4", "--seed", "5")
    assert on_cli.code == 0  # GL401 is a warning, below --fail-on error
    (result,) = on_cli.json()["results"]
    assert "GL401" in findings(result) and all(c.startswith("GL4") for c in findings(result))
    assert result["probe"]["seed"] == 5


@pytest.mark.cli
def test_a_bad_configuration_stops_the_run_with_one_line(tmp_path):
    write(tmp_path, {".git/HEAD": "", "model.py": MODEL, "sub/model.py": MODEL,
                     "sub/pyproject.toml": '[tool.gradlint]\nselct = ["GL1"]\n'})
    run = gradlint_in(tmp_path, "model.py", "sub/model.py", "--format", "json")
    assert (run.code, run.stdout) == (2, "")
    assert run.stderr == "gradlint: error: sub/pyproject.toml: unknown key tool.gradlint.selct (did you mean select?)\n"
    bad_option = gradlint_in(tmp_path, "model.py", "--select", "GL1,GL999")
    assert (bad_option.code, bad_option.stdout) == (2, "")
    assert bad_option.stderr.startswith('gradlint: error: --select: unknown rule code or prefix "GL999"')


@pytest.mark.cli
def test_isolated_ignores_configuration_files(tmp_path):
    write(tmp_path, {".git/HEAD": "", "model.py": MODEL, "pyproject.toml": '[tool.gradlint]\nselect = ["GL3"]\n'})
    run = gradlint_in(tmp_path, "model.py", "--isolated", "--format", "json")
    assert run.code == 1 and {"GL101", "GL301", "GL401"} <= set(findings(run.json()["results"][0]))


@pytest.mark.cli
def test_config_option_uses_a_gradlint_toml_for_every_target(tmp_path):
    write(tmp_path, {
        ".git/HEAD": "",
        "ci/gradlint.toml": """
            select = ["GL1"]
            output-format = "json"
            [probe]
            batch-size = 8
            [rules.GL101]
            error = 1e9
        """,
        "models/pyproject.toml": '[tool.gradlint]\nselect = ["GL3"]\n',  # not read: --config replaces discovery
        "models/model.py": MODEL,
    })
    run = gradlint_in(tmp_path, "models/model.py", "--config", "ci/gradlint.toml")
    assert run.code == 0, run.stderr  # GL101 is only a warning with its error threshold at 1e9
    (result,) = run.json()["results"]
    assert findings(result) == {"GL101": "warning"} and result["probe"]["batch_size"] == 8
