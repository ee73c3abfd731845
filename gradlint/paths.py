"""Paths in reports, spelled as users spell them on the command line."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache


def display_path(path: str) -> str:
    """Relative to the working directory when below it, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def is_library_file(path: str) -> bool:
    """Code of torch or of gradlint (or no file at all, ``<stdin>``): never where a user's layer is."""
    if path.startswith("<"):
        return True
    apath = os.path.abspath(path)
    return any(os.path.commonpath([apath, d]) == d for d in _library_dirs())


@lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    """torch's folder (found without importing it) and gradlint's own."""
    spec = importlib.util.find_spec("torch")
    torch_dirs = tuple(os.path.abspath(p) for p in (spec.submodule_search_locations or [])) if spec else ()
    return torch_dirs + (os.path.dirname(os.path.abspath(__file__)),)


def split_target(spec: str) -> tuple[str, str | None, bool]:
    """A command-line target as (path or module, object name or None, is_file)."""
    if os.path.exists(spec):
        return spec, None, True
    if ":" in spec:
        left, name = spec.rsplit(":", 1)
        if left.endswith(".py") or os.sep in left or os.path.exists(left):
            return left, name or None, True
        return left, name or None, False
    if spec.endswith(".py") or os.sep in spec:
        return spec, None, True
    return spec, None, False
