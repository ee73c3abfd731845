"""Rule documentation: the rule classes' docstrings as Markdown pages, ``gradlint rule`` and ``gradlint rules``.

Each rule's class docstring has five fixed sections (What it does / Why is this bad? / Example /
How to fix / References).  ``page`` renders one rule as Markdown: the page ``gradlint rule GL101``
prints and the generated file ``rules/GL101.md``.  ``python -m gradlint.ruledocs`` regenerates
``rules/`` (gradlint's own rules; plugin packages document theirs); ``--check`` lists stale files.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NoReturn

import click

from .errors import GradlintError
from .render.markdown import cell
from .rules import RULES, Rule, registry
from . import changes

SECTIONS = ("What it does", "Why is this bad?", "Example", "How to fix", "References")
# A section header is a line of its own; the trailing colon is optional ("Why is this bad?" has none).
_HEADER = re.compile(r"^(" + "|".join(re.escape(s) for s in SECTIONS) + r"):?$")
_PAGE = re.compile(r"^GL\d{3}\.md$")
INDEX = "README.md"
ROOT = Path(__file__).resolve().parent.parent / "rules"
REGENERATE = "python -m gradlint.ruledocs"


def _label(cls: type[Rule]) -> str:
    return f"{getattr(cls, 'code', '?')} {getattr(cls, 'name', cls.__name__)} ({cls.__module__}.{cls.__qualname__})"


def sections(cls: type[Rule]) -> dict[str, str]:
    """The docstring's five sections, in order, each dedented with its paragraphs and code kept.

    Raises ValueError naming the rule when the docstring is missing, has text before the first
    section, or a section is missing, repeated, out of order or empty.
    """
    doc = cls.__dict__.get("__doc__")  # not inspect.getdoc: a rule must not inherit Rule's docstring
    if not doc or not doc.strip():
        raise ValueError(f"{_label(cls)}: the class has no docstring; it needs the sections {', '.join(SECTIONS)}")
    found: list[str] = []
    bodies: dict[str, list[str]] = {}
    for line in inspect.cleandoc(doc).splitlines():
        header = _HEADER.match(line.strip())
        if header:
            name = header.group(1)
            if name in bodies:
                raise ValueError(f"{_label(cls)}: docstring section {name!r} appears twice")
            found.append(name)
            bodies[name] = []
        elif found:
            bodies[found[-1]].append(line)
        elif line.strip():
            raise ValueError(f"{_label(cls)}: docstring text before {SECTIONS[0]!r}: {line.strip()!r}")
    missing = [s for s in SECTIONS if s not in bodies]
    if missing:
        raise ValueError(f"{_label(cls)}: docstring section(s) {', '.join(repr(s) for s in missing)} missing; "
                         f"expected {' / '.join(SECTIONS)}, each on a line of its own")
    if tuple(found) != SECTIONS:
        raise ValueError(f"{_label(cls)}: docstring sections out of order: {' / '.join(found)}; "
                         f"expected {' / '.join(SECTIONS)}")
    result = {name: textwrap.dedent("\n".join(lines)).strip("\n") for name, lines in bodies.items()}
    empty = [name for name, text in result.items() if not text.strip()]
    if empty:
        raise ValueError(f"{_label(cls)}: docstring section(s) {', '.join(repr(s) for s in empty)} empty")
    return result


def number(value: object) -> str:
    """Option defaults as written by hand: 1000, 0.001, 1e-05."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _severity(cls: type[Rule]) -> str:
    return cls.severity if cls.enabled_by_default() else f"{cls.severity} (experimental, off by default)"


def _examples(factories: Iterable[Callable], trigger: bool) -> list[str]:
    lines = []
    for factory in factories:
        bound = getattr(factory, "severity", None)
        factory = getattr(factory, "factory", factory)
        func = factory.func if isinstance(factory, functools.partial) else factory
        name = getattr(func, "__qualname__", None) or type(func).__name__
        # A class's own docstring only: inherited ones (nn.Module's) say nothing about the example.
        doc = func.__dict__.get("__doc__") if isinstance(func, type) else getattr(func, "__doc__", None)
        first = inspect.cleandoc(doc).splitlines()[0] if doc and doc.strip() else ""
        lines.append(f"- `{name}`" + (f" ({bound} at {'least' if trigger else 'most'})" if bound else "")
                     + (f": {first}" if first else ""))
    return lines


def page(cls: type[Rule]) -> str:
    """The rule's Markdown page: title, summary, facts, options, the docstring sections, its examples."""
    body = sections(cls)
    enabled = "yes" if cls.enabled_by_default() else "no: experimental, select it explicitly"
    out = [f"# {cls.code} {cls.name}", "", getattr(cls, "summary", "").strip(), "",
           f"- Default severity: `{cls.severity}`",
           f"- Enabled by default: {enabled}"]
    what_if = tuple(getattr(cls, "what_if", ()))
    if what_if:
        out.append("- Try the fix before editing code (the finding suggests the first that fits the model):")
        for change in what_if:
            known = changes.CHANGES.get(change)
            what = f" ({known.description}, `gradlint.init.{known.function}`)" if known else ""
            out.append(f"  - `gradlint MODEL.py --what-if {change}`{what}")
    out.append(f"- Source: `{cls.__module__}.{cls.__qualname__}`")
    options = dict(getattr(cls, "options", {}))
    out += ["", "## Options", ""]
    if options:
        out += ["| option | default |", "|---|---|"]
        out += [f"| `{cell(key)}` | {cell(number(value))} |" for key, value in options.items()]
    else:
        out.append("None.")
    for name in SECTIONS:
        out += ["", f"## {name}", "", body[name]]
    out += ["", "## Examples in the test suite", ""]
    triggers, clean = tuple(getattr(cls, "triggers", ())), tuple(getattr(cls, "clean", ()))
    if not triggers and not clean:
        out.append("None yet.")
    if triggers:
        out += ["Models that must trigger the rule (`triggers`):", "", *_examples(triggers, True)]
    if clean:
        out += [""] if triggers else []
        out += ["Models that must not trigger it, or not above the severity given (`clean`):", "",
                *_examples(clean, False)]
    return "\n".join(out) + "\n"


def index(classes: Sequence[type[Rule]]) -> str:
    """``rules/README.md``: one row per rule, linking to its page."""
    out = ["# gradlint rules", "",
           f"Generated by `{REGENERATE}` from the rule classes' docstrings in `gradlint/rules/`; "
           "do not edit these pages by hand (a test fails when they are stale).", "",
           "| Code | Name | Default severity | Summary |", "|---|---|---|---|"]
    out += [f"| [{cls.code}]({cls.code}.md) | {cell(cls.name)} | {cell(_severity(cls))} | "
            f"{cell(getattr(cls, 'summary', ''))} |" for cls in classes]
    return "\n".join(out) + "\n"


def expected(classes: Sequence[type[Rule]] | None = None) -> dict[str, str]:
    """File name -> content of every generated file (default: gradlint's own rules, ``RULES``)."""
    classes = RULES if classes is None else tuple(classes)
    files = {f"{cls.code}.md": page(cls) for cls in classes}
    files[INDEX] = index(classes)
    return files


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _diff(root: Path, classes: Sequence[type[Rule]] | None) -> list[tuple[str, str]]:
    files = expected(classes)
    result = []
    for name, text in files.items():
        current = _read(root / name)
        if current is None:
            result.append((name, "missing" if not (root / name).exists() else "unreadable"))
        elif current != text:
            result.append((name, "different"))
    if root.is_dir():
        result += [(p.name, "extra") for p in root.iterdir() if _PAGE.match(p.name) and p.name not in files]
    return sorted(result)


def stale(root: Path, classes: Sequence[type[Rule]] | None = None) -> list[str]:
    """Paths relative to ``root`` that are missing, different from what ``write`` would write, or extra."""
    return [name for name, _ in _diff(Path(root), classes)]


def write(root: Path, classes: Sequence[type[Rule]] | None = None) -> list[Path]:
    """Write every rule's page and the index under ``root``; remove pages (``GL<3 digits>.md``) of rules
    that no longer exist.  Returns the paths created, changed or removed (empty when up to date)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files = expected(classes)
    touched = []
    for name, text in files.items():
        path = root / name
        if _read(path) != text:
            path.write_text(text, encoding="utf-8", newline="\n")
            touched.append(path)
    for path in sorted(root.iterdir()):
        if _PAGE.match(path.name) and path.name not in files:
            path.unlink()
            touched.append(path)
    return touched


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m gradlint.ruledocs [--check]``: regenerate ``rules/`` at the repository root, or list stale files."""
    parser = argparse.ArgumentParser(prog="python -m gradlint.ruledocs", description=main.__doc__)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing the files that are missing, different or extra")
    parser.add_argument("--root", type=Path, default=ROOT, help="the rules folder [default: the repository's rules/]")
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.root == ROOT and not (ROOT.parent / "pyproject.toml").is_file():
        print(f"gradlint: error: {ROOT.parent} is not a gradlint source checkout; give --root", file=sys.stderr)
        sys.exit(2)
    if args.check:
        diff = _diff(root, None)
        for name, why in diff:
            print(f"{root.name}/{name}: {why}")
        if diff:
            print(f"{len(diff)} stale file(s) in {root.name}/; run `{REGENERATE}` and commit the result",
                  file=sys.stderr)
            sys.exit(1)
        print(f"{root.name}/ is up to date", file=sys.stderr)
        return
    touched = write(root, None)
    for path in touched:
        print(f"{root.name}/{path.name}: {'removed' if not path.exists() else 'written'}")
    print(f"{root.name}/: {len(touched)} file(s) changed, {len(RULES)} rule page(s)", file=sys.stderr)


def _fail(message: str) -> NoReturn:
    click.echo(f"gradlint: error: {message}", err=True)
    sys.exit(2)


def _registry() -> tuple[type[Rule], ...]:
    try:
        return registry()
    except GradlintError as exc:  # a broken plugin: one line, not a traceback
        _fail(str(exc))


def find(key: str, classes: Iterable[type[Rule]]) -> type[Rule] | None:
    """The rule whose code (any case) or kebab-case name is ``key``."""
    key = key.strip()
    return next((cls for cls in classes if cls.code == key.upper() or cls.name == key.lower()), None)


@click.command("rule")
@click.argument("code")
def rule_command(code: str) -> None:
    """Print a rule's documentation (CODE, e.g. GL101, or its name, e.g. exploding-gradients) as Markdown."""
    cls = find(code, _registry())
    if cls is None:
        _fail(f"unknown rule code '{code}'; see gradlint rules")
    try:
        text = page(cls)
    except ValueError as exc:  # a plugin rule with a malformed docstring
        _fail(str(exc))
    click.echo(text, nl=False)


@click.command("rules")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
def rules_command(output_format: str) -> None:
    """List every rule (gradlint's and plugins'): code, name, default severity, summary."""
    classes = _registry()
    if output_format == "json":
        click.echo(json.dumps([{"code": cls.code, "name": cls.name, "severity": cls.severity,
                                "summary": getattr(cls, "summary", ""), "options": dict(getattr(cls, "options", {})),
                                "enabled_by_default": cls.enabled_by_default()} for cls in classes], indent=2))
        return
    rows = [("code", "name", "severity", "summary")]
    rows += [(cls.code, cls.name, cls.severity, getattr(cls, "summary", "")
              + ("" if cls.enabled_by_default() else " [experimental: off by default]")) for cls in classes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])


if __name__ == "__main__":
    main()
