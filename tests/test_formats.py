"""The machine formats: SARIF against the OASIS schema, GitHub annotations and the Markdown report
against golden files, JSON against docs/schema/gradlint-1.json, and where the report goes (--output,
the job summary, colour).

Golden files render frozen reports (tests/snapshots/), so they are the same on any machine:
    python -m pytest tests/test_formats.py --regen-golden     # after a deliberate change; review the diff
"""

import inspect
import json
import re
from dataclasses import fields, replace
from pathlib import Path

import jsonschema
import pytest

from gradlint.render import Output, counts, render
from gradlint.render import github, sarif
from gradlint.render.json import result_dict, _what_if
from gradlint.report import (AnalysisError, Finding, Layer, OutputStats, ProbeSettings, ResidualBlock, Summary, TargetResult,
                             WhatIf)
from gradlint.rules import RULES, check
from gradlint.rules.base import fmt

import snapshots

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
SARIF_SCHEMA = json.loads((Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json").read_text())
JSON_SCHEMA = json.loads((ROOT / "docs" / "schema" / "gradlint-1.json").read_text())
EXAMPLES = "gradlint/rules/examples.py"
OWN_RULES = tuple(cls() for cls in RULES if cls.enabled_by_default())   # never a plugin installed here
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[+-]\d+)?")


def sarif_valid(doc: dict) -> dict:
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(doc)
    return doc


def gradlint_json_valid(doc: dict) -> dict:
    jsonschema.Draft202012Validator(JSON_SCHEMA).validate(doc)
    return doc


def frozen(name: str, line: int | None = None, **extra) -> TargetResult:
    """A rule example's frozen report as if `gradlint FILE:NAME` had probed it in the file that defines it
    (``line``: another line than its own, as if the file had been edited)."""
    factory = snapshots.examples()[name]
    path = Path(inspect.getsourcefile(factory)).relative_to(ROOT).as_posix()
    line = line or inspect.getsourcelines(factory)[1]
    report = replace(snapshots.load(name), target=f"{path}:{name}", path=path, line=line)
    return TargetResult(target=report.target, report=report, findings=check(report, OWN_RULES, OWN_RULES), **extra)


def frozen_results() -> list[TargetResult]:
    """One failing model (every severity), one clean, one without a layer or a value, one that failed."""
    failed = TargetResult(target="tests/fixtures/import_error.py", error=AnalysisError(
        "tests/fixtures/import_error.py:2: import failed: ModuleNotFoundError: No module named "
        "'not_a_real_module_xyz'; fix the error (--debug shows the traceback)", "import"))
    return [frozen("default_init_relu_mlp"), frozen("residual_mlp"), frozen("untraceable_model"), failed]


@pytest.fixture
def at_root(monkeypatch):
    """Report paths are relative to the working directory, as when the command line runs from the root."""
    monkeypatch.chdir(ROOT)
    return ROOT


# --- SARIF --------------------------------------------------------------------------------------------


def test_sarif_of_a_clean_run_is_valid_and_lists_every_enabled_rule(gradlint):
    run = gradlint("examples/residual_mlp.py", "--format", "sarif")
    assert run.code == 0
    doc = sarif_valid(json.loads(run.stdout))
    (only,) = doc["runs"]
    assert only["results"] == []
    assert only["invocations"][0]["executionSuccessful"] is True
    assert "uri" not in only["originalUriBaseIds"]["%SRCROOT%"]   # no absolute path in any output
    assert str(ROOT) not in run.stdout
    driver = only["tool"]["driver"]
    assert driver["name"] == "gradlint" and driver["version"] and driver["informationUri"]
    assert [r["id"] for r in driver["rules"]] == [cls.code for cls in RULES if cls.enabled_by_default()]
    gl101 = next(r for r in driver["rules"] if r["id"] == "GL101")
    assert gl101["name"] == "exploding-gradients"
    assert gl101["helpUri"] == sarif.RULES_URL + "GL101.md"
    assert gl101["help"]["markdown"].startswith("# GL101 exploding-gradients")
    assert "Gradient Scale Coefficient" in gl101["fullDescription"]["text"]
    assert gl101["defaultConfiguration"]["level"] == "error"


def test_sarif_results_point_at_the_layer_lines_of_the_model_file(gradlint):
    run = gradlint("examples/deep_mlp.py", "--format", "sarif")
    assert run.code == 1
    doc = sarif_valid(json.loads(run.stdout))
    (only,) = doc["runs"]
    rules = only["tool"]["driver"]["rules"]
    linear = next(i for i, text in enumerate((ROOT / "examples/deep_mlp.py").read_text().splitlines(), 1)
                  if "nn.Linear(" in text)
    gl101 = next(r for r in only["results"] if r["ruleId"] == "GL101")
    assert gl101["level"] == "error" and rules[gl101["ruleIndex"]]["id"] == "GL101"
    physical = gl101["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "examples/deep_mlp.py", "uriBaseId": "%SRCROOT%"}
    assert physical["region"]["startLine"] == linear
    names = [x["name"] for x in gl101["locations"][0]["logicalLocations"]]
    assert names == ["examples/deep_mlp.py:deep_mlp", "0"]
    assert "\nfix: Add residual connections" in gl101["message"]["text"]
    assert all(r["partialFingerprints"][sarif.FINGERPRINT] for r in only["results"])
    assert only["invocations"][0]["executionSuccessful"] is True


def test_sarif_reports_analysis_failures_as_tool_notifications(gradlint):
    run = gradlint("tests/fixtures/import_error.py", "tests/fixtures/missing_file.py", "--format", "sarif")
    assert run.code == 2
    doc = sarif_valid(json.loads(run.stdout))
    invocation = doc["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    broken, missing = invocation["toolExecutionNotifications"]
    assert broken["level"] == missing["level"] == "error"
    assert "not_a_real_module_xyz" in broken["message"]["text"]
    assert broken["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "tests/fixtures/import_error.py"
    assert "locations" not in missing  # no file to point at
    assert doc["runs"][0]["results"] == []


def test_sarif_fingerprints_ignore_the_line_and_how_the_target_was_spelled(at_root):
    r = frozen("default_init_relu_mlp")
    moved = frozen("default_init_relu_mlp", r.report.line + 18)
    spelled = replace(r, target="./" + r.target)

    def prints(result):
        doc = json.loads(render("sarif", Output([result], OWN_RULES, at_root)))
        return [x["partialFingerprints"] for x in doc["runs"][0]["results"]]

    assert prints(r) == prints(moved) == prints(spelled)
    assert len({p[sarif.FINGERPRINT] for p in prints(r)}) == len(r.findings)


def test_sarif_of_frozen_reports_is_valid_with_suppressed_findings(at_root):
    results = frozen_results()
    quiet = replace(results[1], suppressed=results[0].findings[:1])
    text = render("sarif", Output([results[0], quiet, results[3]], OWN_RULES, at_root))
    doc = sarif_valid(json.loads(text))
    found = doc["runs"][0]["results"]
    assert len(found) == len(results[0].findings) + 1
    assert [r for r in found if "suppressions" in r] == found[-1:]
    assert found[-1]["suppressions"] == [{"kind": "inSource"}]
    assert text == render("sarif", Output([results[0], quiet, results[3]], OWN_RULES, at_root))


# --- GitHub annotations and Markdown: golden files ---------------------------------------------------

GOLDEN_FILES = {"github": "github.txt", "markdown": "markdown.md"}


@pytest.mark.parametrize("fmt_name", sorted(GOLDEN_FILES))
def test_golden_output(fmt_name, at_root, regen_golden):
    text = render(fmt_name, Output(frozen_results(), OWN_RULES, at_root))
    path = GOLDEN / GOLDEN_FILES[fmt_name]
    if regen_golden:
        path.write_text(text, encoding="utf-8", newline="\n")
    assert text == path.read_text(encoding="utf-8"), f"{path} is stale: rerun with --regen-golden and review the diff"


def frozen_comparison(results: list[TargetResult], root: Path):
    """The frozen results against a baseline that had them with changes: one finding missing (now new),
    one recorded with a better value (now worse), one fixed since (stale), a figure that moved, a model gone."""
    from gradlint import baseline

    doc = baseline.record(results, root)
    failing = doc["models"][f"{EXAMPLES}:default_init_relu_mlp"]
    failing["findings"] = [e for e in failing["findings"] if e["code"] != "GL204"]
    gl102 = next(e for e in failing["findings"] if e["code"] == "GL102")
    gl102["value"] = 1e-5                                     # the GSC fell from 1e-5 to 1.7e-7: worse
    failing["metrics"]["gsc_input"] = 1e-5
    clean = doc["models"][f"{EXAMPLES}:residual_mlp"]
    clean["findings"].append({"code": "GL203", "layer": "blocks.3", "severity": "warning", "value": 12})
    doc["models"]["models/old.py:net"] = {"metrics": {}, "findings": []}
    return baseline.compare(results, doc, root, ".gradlint-baseline.json")


def test_golden_markdown_with_a_baseline(at_root, regen_golden):
    results = frozen_results()
    text = render("markdown", Output(results, OWN_RULES, at_root, frozen_comparison(results, at_root)))
    path = GOLDEN / "markdown-baseline.md"
    if regen_golden:
        path.write_text(text, encoding="utf-8", newline="\n")
    assert text == path.read_text(encoding="utf-8"), f"{path} is stale: rerun with --regen-golden and review the diff"
    assert "1 new, 1 worse (tolerance 25%), 1 stale; in the baseline but not analysed now: `models/old.py:net`" in text
    assert "| GSC input | 1.00e-05 | 1.70e-07 | worse |" in text
    assert "| **worse** (was 1.00e-05) |" in text and "| **new** |" in text
    assert "- GL203 at `blocks.3` (warning)" in text
    assert "`gradlint/rules/examples.py:residual_mlp`: clean; since the baseline: 1 stale" in text


def test_json_baseline_section_is_valid(at_root):
    results = frozen_results()
    doc = gradlint_json_valid(json.loads(render("json", Output(results, OWN_RULES, at_root,
                                                              frozen_comparison(results, at_root)))))
    section = doc["baseline"]
    assert section["counts"] == {"new": 1, "worse": 1, "absorbed": len(results[0].findings) - 2 + len(
        results[2].findings), "stale": 1, "gone": 1}
    assert [(f["code"], f["baseline_value"]) for f in section["worse"]] == [("GL102", 1e-5)]
    assert section["models"][f"{EXAMPLES}:default_init_relu_mlp"]["regressed"] == ["gsc_input"]


def _numbers(f: Finding) -> list[str]:
    return NUMBER.findall(f.message)


def test_github_golden_file_has_one_command_per_finding_and_failure_with_its_numbers():
    lines = (GOLDEN / GOLDEN_FILES["github"]).read_text(encoding="utf-8").splitlines()
    results = frozen_results()
    commands = [line for line in lines if line.startswith("::")]
    assert len(commands) == sum(len(r.findings) for r in results) + sum(not r.ok for r in results)
    expected = iter(commands)
    for r in results:
        for f in r.findings:
            line = next(expected)
            assert line.startswith(f"::{github.COMMAND[f.severity]} ")
            assert f"title=gradlint {f.code}::" in line
            assert (f"line={f.line}," in line) == (f.line is not None), line
            assert all(n in line for n in _numbers(f)), (f.code, _numbers(f), line)
        if not r.ok:
            line = next(expected)
            assert line.startswith("::error file=tests/fixtures/import_error.py,") and "line=" not in line


def test_markdown_golden_file_has_every_figure_finding_and_the_total():
    text = (GOLDEN / GOLDEN_FILES["markdown"]).read_text(encoding="utf-8")
    results = frozen_results()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for r in results:
        if not r.ok:
            assert f"### `{r.target}`: could not be analysed" in text and r.error.message in text
            continue
        s = r.report.summary
        figures = next(row for row in rows if row.startswith(f"| {r.report.trace} | {fmt(s.gsc_input)} | "))
        assert f" {fmt(s.gsc_max)} " in figures and f" / {s.compositional_depth} " in figures
        for f in r.findings:
            row = next(row for row in rows if row.startswith(f"| {f.severity} | {f.code} {f.name} |"))
            assert all(n in row for n in _numbers(f)), (f.code, _numbers(f), row)
    finding_rows = [row for row in rows if row.split(" | ")[0][2:] in ("error", "warning", "info")]
    assert len(finding_rows) == sum(len(r.findings) for r in results)
    c = counts(results)
    total = text.rstrip().splitlines()[-1]
    assert re.fullmatch(rf"\*\*{c['targets'] - c['failed']} targets? analysed\*\*: {c['errors']} errors?, "
                        rf"{c['warnings']} warnings?, {c['infos']} info; {c['failed']} could not be analysed", total)


def test_github_escaping_follows_the_actions_toolkit():
    assert github.escape_data("50% a:b,c\r\nd") == "50%25 a:b,c%0D%0Ad"
    assert github.escape_property("50% a:b,c\r\nd") == "50%25 a%3Ab%2Cc%0D%0Ad"
    command = github.command("warning", "x: 1, y", file="a,b:c.py", line=3)
    assert command == "::warning file=a%2Cb%3Ac.py,line=3::x: 1, y"
    assert github.command("notice", "%") == "::notice::%25"


def test_markdown_escapes_pipes_in_table_cells(at_root):
    r = frozen("default_init_relu_mlp")
    piped = replace(r, findings=(replace(r.findings[0], message="a | b\nc"),))
    text = render("markdown", Output([piped], OWN_RULES, at_root))
    assert "| a \\| b c |" in text


# --- JSON schema -------------------------------------------------------------------------------------


def test_json_schema_is_valid_and_names_every_field_as_required():
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)
    defs = JSON_SCHEMA["$defs"]
    for name, cls in {"layer": Layer, "summary": Summary, "probe": ProbeSettings, "residual_block": ResidualBlock,
                      "finding": Finding, "error": AnalysisError, "output": OutputStats}.items():
        names = {f.name for f in fields(cls) if f.compare}
        assert set(defs[name]["required"]) == set(defs[name]["properties"]) == names, name
    failed = TargetResult(target="x.py", error=AnalysisError("x.py: no such file", "import"))
    assert set(defs["result"]["required"]) == set(defs["result"]["properties"]) == set(result_dict(failed))
    what_if = _what_if(failed, WhatIf(change="orthogonal", applied=False, reason="no weights"))
    assert set(defs["what_if"]["required"]) == set(defs["what_if"]["properties"]) == set(what_if)
    assert set(defs["counts"]["required"]) == set(counts([]))
    assert set(JSON_SCHEMA["required"]) == set(json.loads(render("json", Output([]))))


def test_json_of_frozen_reports_with_a_what_if_satisfies_the_schema(at_root):
    results = frozen_results()
    after = frozen("residual_mlp").report
    variant = WhatIf(change="looks-linear", applied=True, changed=("0.weight",), skipped=(("7", "odd width"),),
                     report=after, findings=check(after, OWN_RULES, OWN_RULES))
    results[0] = replace(results[0], what_if=(variant,), suppressed=results[2].findings)
    doc = gradlint_json_valid(json.loads(render("json", Output(results, OWN_RULES, at_root))))
    assert doc["results"][0]["what_if"][0]["summary"]["compositional_depth"] == after.summary.compositional_depth


def test_json_schema_rejects_dropped_fields_and_unknown_severities(at_root):
    doc = json.loads(render("json", Output(frozen_results(), OWN_RULES, at_root)))
    validator = jsonschema.Draft202012Validator(JSON_SCHEMA)
    assert validator.is_valid(doc)
    dropped = json.loads(json.dumps(doc))
    del dropped["results"][0]["summary"]["gsc_max"]
    assert not validator.is_valid(dropped)
    renamed = json.loads(json.dumps(doc))
    renamed["results"][0]["findings"][0]["severity"] = "fatal"
    assert not validator.is_valid(renamed)
    inconsistent = json.loads(json.dumps(doc))
    inconsistent["results"][3]["ok"] = True  # a failed target's result claims success
    assert not validator.is_valid(inconsistent)
    added = json.loads(json.dumps(doc))
    added["results"][0]["new_field"] = 1  # fields may be added
    assert validator.is_valid(added)


# --- Where the report goes ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt_name", ["json", "text"])
def test_output_file_gets_the_report_and_stdout_nothing(gradlint, tmp_path, fmt_name):
    out = tmp_path / "report.out"
    run = gradlint("examples/tanh_mlp.py", "--format", fmt_name, "--output", str(out))
    assert run.code == 1
    assert run.stdout == ""
    written = out.read_text(encoding="utf-8")
    if fmt_name == "json":
        gradlint_json_valid(json.loads(written))
    else:
        assert "examples/tanh_mlp.py:TanhMLP  ERROR" in written and "\x1b[" not in written


def test_github_format_appends_the_markdown_report_to_the_job_summary(gradlint, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    run = gradlint("examples/tanh_mlp.py", "--format", "github", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert run.code == 1
    assert run.stdout.startswith("::error file=examples/tanh_mlp.py,line=")
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## gradlint\n")
    assert "### `examples/tanh_mlp.py:TanhMLP`: error" in text
    codes = re.findall(r"title=gradlint (GL\d{3})::", run.stdout)
    assert codes and all(f"| {code} " in text for code in codes)


ANSI = "\x1b["
COLOUR = re.compile(r"\x1b\[[0-9;]*3[1-7](;[0-9]+)*m")   # a foreground colour, not only bold


@pytest.mark.parametrize("args, env, escapes", [
    (["--color", "always"], {}, True),                                       # piped, NO_COLOR=1 from the fixture
    (["--color", "never"], {"NO_COLOR": None, "FORCE_COLOR": "1"}, False),
    ([], {}, False),                                                         # NO_COLOR=1
    ([], {"NO_COLOR": None, "FORCE_COLOR": "1"}, True),
], ids=["always", "never-beats-force-color", "no-color", "force-color"])
def test_colour_of_the_text_report(gradlint, args, env, escapes):
    run = gradlint("examples/tanh_mlp.py", *args, env=env)
    assert run.code == 1
    assert (ANSI in run.stdout) == escapes
    if escapes:   # colours, not only bold: --color always beats NO_COLOR
        assert COLOUR.search(run.stdout), "the severities are coloured"


def test_a_report_written_to_a_file_has_no_colour_unless_asked(gradlint, tmp_path):
    for args, coloured in (([], False), (["--color", "always"], True)):
        out = tmp_path / "report.txt"
        run = gradlint("examples/tanh_mlp.py", "--output", str(out), *args, env={"NO_COLOR": None, "FORCE_COLOR": "1"})
        assert run.code == 1 and run.stdout == ""
        assert (ANSI in out.read_text()) == coloured
        assert "ERROR" in out.read_text() and ("examples/tanh_mlp.py:TanhMLP  ERROR" in out.read_text()) != coloured


def test_the_schema_names_every_capture_tier_and_severity_the_code_has():
    """The vocabulary is the one list; the JSON Schema, the contract, must say the same."""
    from gradlint.vocabulary import SEVERITIES, TIERS

    result = JSON_SCHEMA["$defs"]["result"]["properties"]
    assert result["trace"]["enum"] == [*TIERS, None]
    severities = {tuple(v["enum"]) for v in _enums(JSON_SCHEMA) if "warning" in v["enum"]}
    assert severities == {SEVERITIES}


def _enums(node):
    if isinstance(node, dict):
        if "enum" in node:
            yield node
        for value in node.values():
            yield from _enums(value)
    elif isinstance(node, list):
        for value in node:
            yield from _enums(value)


def _finding(severity: str, i: int):
    from gradlint.report import Finding
    return Finding(code="GL101", name="exploding-gradients", severity=severity, message=f"m{i}", recommendation="r",
                   layer=f"l{i}", value=None, threshold=None, path=None, line=None)


def test_github_annotations_are_capped_per_type_with_a_roll_up_line():
    """GitHub shows 10 annotations of each type per step and drops the rest silently: gradlint shows the
    first 10 errors and warnings, 9 notices, and a notice that counts what was left out."""
    from gradlint.render import Output
    from gradlint.report import TargetResult
    findings = ([_finding("error", i) for i in range(3)] + [_finding("warning", i) for i in range(25)]
                + [_finding("info", i) for i in range(12)])
    lines = github.render(Output([TargetResult("m.py:net", findings=tuple(findings))])).splitlines()
    kinds = [line.split(" ", 1)[0] for line in lines]
    assert kinds.count("::error") == 3 and kinds.count("::warning") == 10 and kinds.count("::notice") == 10
    assert lines[-1].startswith("::notice title=gradlint%3A more findings::")
    assert "18 more gradlint annotations not shown (15 warnings, 3 notices)" in lines[-1]
    assert [line for line in lines if line.startswith("::warning")][-1].endswith("::m9%0Afix: r")
    few = github.render(Output([TargetResult("m.py:net", findings=tuple(findings[:13]))])).splitlines()
    assert len(few) == 13 and "more findings" not in few[-1]                 # under the cap: nothing rolled up


def test_annotations_from_the_sarif_report_are_those_of_the_github_format(at_root, tmp_path, capsys):
    """The Action annotates from the SARIF report it uploads (one probe for both): the same commands, in the
    same order and under the same cap, as --format github."""
    output = Output(frozen_results(), OWN_RULES, at_root)
    sarif_doc = json.loads(render("sarif", output))
    assert github.from_sarif(sarif_doc) == render("github", output)
    many = [_finding("warning", i) for i in range(14)]
    output = Output([TargetResult("m.py:net", findings=tuple(many))], OWN_RULES, at_root)
    assert github.from_sarif(json.loads(render("sarif", output))) == render("github", output)
    report = tmp_path / "r.sarif"
    report.write_text("{not json")
    assert github.main([str(report)]) == 2
    assert "not a readable SARIF report" in capsys.readouterr().err
