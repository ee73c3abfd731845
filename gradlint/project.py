"""Project mode: the models a project lists in ``[tool.gradlint] models``, and which of them a changed
file affects (the model's own file, or any file of the repository it imports, directly or not)."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from .paths import split_target


def model_file(target: str) -> Path | None:
    """The file of a ``file.py:NAME`` or ``file.py`` target (None for ``package.module:NAME``)."""
    where, _, is_file = split_target(target)
    return Path(where).resolve() if is_file else None


def affected(targets: list[str], changed: Path, root: Path) -> list[str]:
    """The targets whose file is ``changed`` or imports it (within ``root``, the repository)."""
    changed = changed.resolve()
    out = []
    for target in targets:
        file = model_file(target)
        if file is not None and (file == changed or changed in imported_files(file, root.resolve())):
            out.append(target)
    return out


def imported_files(file: Path, root: Path) -> frozenset[Path]:
    """Every file of the repository ``file`` imports, directly or through other files of it."""
    seen: set[Path] = set()
    todo = [file]
    while todo:
        for found in _direct_imports(todo.pop(), root):
            if found not in seen:
                seen.add(found)
                todo.append(found)
    return frozenset(seen)


@lru_cache(maxsize=1024)
def _direct_imports(file: Path, root: Path) -> tuple[Path, ...]:
    """Files of the repository ``file`` imports: modules looked up beside it (its folder is on sys.path
    while gradlint imports it), in its package for relative imports, and from the repository root."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ()
    names: list[tuple[str, int]] = []  # (dotted module, relative level)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [(a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            modules = [(base, node.level), *((f"{base}.{a.name}" if base else a.name, node.level) for a in node.names)]
        else:
            continue
        for dotted, level in modules:  # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            parts = dotted.split(".") if dotted else []
            names += [(".".join(parts[:i]), level) for i in range(1, len(parts))] + [(dotted, level)]
    found = []
    for dotted, level in names:
        bases = [file.parent] if level == 0 else [file.parents[level - 1]] if level - 1 < len(file.parents) else []
        if level == 0:
            bases.append(root)
        for base in bases:
            for candidate in (base.joinpath(*dotted.split(".")).with_suffix(".py"),
                              base.joinpath(*dotted.split("."), "__init__.py")):
                if dotted and candidate.is_file() and root in candidate.resolve().parents:
                    found.append(candidate.resolve())
    return tuple(dict.fromkeys(found))
