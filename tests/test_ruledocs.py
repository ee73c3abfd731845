"""Rule documentation: the generated rules/ pages, the docstring sections, `gradlint rule` and `gradlint rules`."""

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradlint import ruledocs
from gradlint.rules import RULES, registry
from gradlint.rules.base import Rule

ROOT = ruledocs.ROOT
REPO = Path(__file__).resolve().parent.parent
CLASSES = registry()


def test_committed_rule_pages_are_up_to_date():
    stale = ruledocs.stale(ROOT)
    assert stale == [], (f"rules/ is stale ({', '.join(stale)}): run `python -m gradlint.ruledocs` "
                         "and commit the result")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.code)
def test_docstring_has_the_five_sections_in_order_and_non_empty(cls):
    found = ruledocs.sections(cls)
    assert tuple(found) == ruledocs.SECTIONS
    assert all(text.strip() for text in found.values())


def test_codes_are_unique_and_names_unique_kebab_case():
    codes = [cls.code for cls in CLASSES]
    names = [cls.name for cls in CLASSES]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"GL\d{3}", cls.code) for cls in RULES)
    assert all(re.fullmatch(r"[A-Z]{1,8}\d{3}", code) for code in codes)
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name) for name in names)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.code)
def test_rule_command_prints_the_page_by_code_lower_case_code_and_name(cls):
    runner = CliRunner()
    for key in (cls.code, cls.code.lower(), cls.name):
        result = runner.invoke(ruledocs.rule_command, [key])
        assert result.exit_code == 0, result.output
        assert result.stdout == ruledocs.page(cls)


def test_rules_command_lists_every_code_once():
    result = CliRunner().invoke(ruledocs.rules_command, [])
    assert result.exit_code == 0, result.output
    first_column = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert first_column == [cls.code for cls in CLASSES]


def test_rules_command_json_lists_every_rule_with_its_options():
    result = CliRunner().invoke(ruledocs.rules_command, ["--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["code"] for row in rows] == [cls.code for cls in CLASSES]
    assert set(rows[0]) == {"code", "name", "severity", "summary", "options", "enabled_by_default"}
    for row, cls in zip(rows, CLASSES):
        assert row["options"] == cls.options
        assert row["enabled_by_default"] is cls.enabled_by_default()


def test_unknown_rule_code_exits_2_with_one_line_error():
    result = CliRunner().invoke(ruledocs.rule_command, ["GL999"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "gradlint: error: unknown rule code 'GL999'; see gradlint rules\n"


def test_check_detects_a_modified_missing_and_extra_page(tmp_path):
    root = tmp_path / "rules"
    written = ruledocs.write(root)
    assert {p.name for p in written} == {f"{cls.code}.md" for cls in RULES} | {"README.md"}
    assert ruledocs.stale(root) == []
    assert ruledocs.write(root) == []
    first, second = RULES[0].code, RULES[1].code
    page = root / f"{first}.md"
    page.write_text(page.read_text() + "edited by hand\n")
    (root / f"{second}.md").unlink()
    (root / "GL998.md").write_text("# a rule that no longer exists\n")
    (root / "notes.md").write_text("not a rule page: left alone\n")
    assert ruledocs.stale(root) == sorted([f"{first}.md", f"{second}.md", "GL998.md"])
    with pytest.raises(SystemExit) as exit_:
        ruledocs.main(["--check", "--root", str(root)])
    assert exit_.value.code == 1
    ruledocs.main(["--root", str(root)])
    assert ruledocs.stale(root) == []
    assert not (root / "GL998.md").exists() and (root / "notes.md").exists()


def test_committed_pages_copy_goes_stale_when_a_page_is_modified(tmp_path):
    root = tmp_path / "rules"
    shutil.copytree(ROOT, root)
    page = root / "GL101.md"
    page.write_text(page.read_text().replace("exploding", "exploring", 1))
    assert "GL101.md" in ruledocs.stale(root)


def test_sections_names_the_rule_when_a_section_is_missing_or_out_of_order():
    class Missing(Rule):
        """What it does:
        Something.

        Why is this bad?
        Because.

        How to fix:
        Fix it.

        References:
        None.
        """

        code, name, severity, summary = "GL990", "missing-example", "info", "test"

    class Swapped(Rule):
        """What it does:
        Something.

        Example:
        A model.

        Why is this bad?
        Because.

        How to fix:
        Fix it.

        References:
        None.
        """

        code, name, severity, summary = "GL991", "swapped-sections", "info", "test"

    with pytest.raises(ValueError, match=r"GL990 missing-example.*'Example' missing"):
        ruledocs.sections(Missing)
    with pytest.raises(ValueError, match=r"GL991 swapped-sections.*out of order"):
        ruledocs.sections(Swapped)


def test_experimental_rule_page_says_it_is_off_by_default():
    class Experimental(Rule):
        """What it does:
        Something.

        Why is this bad?
        Because.

        Example:
        A linear model:

            model = nn.Linear(2, 2)

        How to fix:
        Fix it.

        References:
        None.
        """

        code, name, severity, summary = "GL901", "experimental-thing", "info", "test"
        options = {"threshold": 1e-3, "count": 20}

    text = ruledocs.page(Experimental)
    assert "- Enabled by default: no: experimental, select it explicitly" in text
    assert "| `threshold` | 0.001 |" in text and "| `count` | 20 |" in text
    assert "## Example\n\nA linear model:\n\n    model = nn.Linear(2, 2)\n" in text


def _toml_rule_tables(text: str):
    """(code, comment, {key: value}) for every ``[tool.gradlint.rules.CODE]`` table in TOML code blocks."""
    import tomllib

    for block in re.findall(r"```toml\n(.*?)```", text, flags=re.S):
        for m in re.finditer(r"^\[tool\.gradlint\.rules\.(\w+)\][ \t]*(#.*)?$", block, flags=re.M):
            body = block[m.end():].split("\n[", 1)[0]
            yield m.group(1), m.group(2) or "", tomllib.loads(body)


def test_hand_written_docs_name_real_rules_and_options_and_no_thresholds():
    """Hand-written docs may show option tables, but defaults live on the generated rule pages only
    (a threshold repeated by hand drifts: GL101's warning level once read 10 here and 30 in the code).
    The docs with rule tables are found, so a doc that gains one is checked too, and one must exist."""
    docs = [p for p in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
            if list(_toml_rule_tables(p.read_text()))]
    assert docs, "no doc shows a [tool.gradlint.rules.CODE] table any more"
    for path in docs:
        _check_rule_tables(path.relative_to(REPO).as_posix(), path.read_text())


def _check_rule_tables(doc: str, text: str):
    by_code = {r.code: r for r in RULES}
    for code, comment, table in _toml_rule_tables(text):
        rule = by_code[code]
        assert set(table) <= set(rule.options), f"{doc}: {code} has no option {set(table) - set(rule.options)}"
        if comment:
            assert rule.name in comment, f"{doc}: the comment on {code} does not name {rule.name}"
            assert not re.search(r"[<>]=?\s*\d", comment), f"{doc}: {code}'s comment repeats a threshold: {comment}"


def test_rule_examples_in_docstrings_match_the_examples_the_rules_carry():
    """A depth a rule's Example section names ("30-layer") is the depth of one of its example models."""
    for rule in RULES:
        example = ruledocs.sections(rule)["Example"]
        docs = " ".join((getattr(f, "factory", f).__doc__ or "") for f in (*rule.triggers, *rule.clean))
        for depth in re.findall(r"(\d+)-layer", example):
            assert re.search(rf"\b{depth}\b", docs), f"{rule.code}: Example says {depth}-layer, no example has it"
