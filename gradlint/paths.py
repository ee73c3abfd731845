"""Paths in reports, spelled as users spell them on the command line, and never absolute.

A file inside an installed package is shown relative to the folder it is installed in
(``torchvision/models/resnet.py``); any other relative to the working directory (with ``..`` when
outside it).
"""

from __future__ import annotations

import importlib.util
import os
import sysconfig
from functools import lru_cache

INSTALL_FOLDERS = ("site-packages", "dist-packages")


def display_path(path: str) -> str:
    """``path`` as shown in reports: a package's file relative to its install folder (even when a
    virtual environment lives inside the project), anything else relative to the working directory."""
    apath = os.path.abspath(path)
    root = _install_root(apath)
    if root is not None:
        return os.path.relpath(apath, root)
    return os.path.relpath(apath)


def is_installed_file(path: str) -> bool:
    """A file of an installed package or of the standard library: never the user's own code."""
    return not path.startswith("<") and _install_root(os.path.abspath(path)) is not None


def _install_root(apath: str) -> str | None:
    """The innermost ``site-packages``-like folder, or interpreter library folder, holding ``apath``."""
    parts = apath.split(os.sep)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in INSTALL_FOLDERS:
            return os.sep.join(parts[:i + 1])
    inside = [d for d in _interpreter_dirs() if os.path.commonpath([apath, d]) == d]
    return max(inside, key=len, default=None)


@lru_cache(maxsize=1)
def _interpreter_dirs() -> tuple[str, ...]:
    """The standard library's folder and those packages are installed in (purelib, platlib)."""
    paths = sysconfig.get_paths()
    return tuple({os.path.abspath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths})


def is_library_file(path: str) -> bool:
    """Code of torch or of gradlint (or no file at all, ``<stdin>``): never where a user's layer is."""
    if path.startswith("<"):
        return True
    apath = os.path.abspath(path)
    return any(os.path.commonpath([apath, d]) == d for d in _library_dirs())


@lru_cache(maxsize=1)
def non_user_folders() -> tuple[str, ...]:
    """torch's, gradlint's and the interpreter's folders (standard library, installed packages), each ending
    in a separator: ``path.startswith(non_user_folders())`` is a quick first test of many paths."""
    return tuple(os.path.join(d, "") for d in (*_library_dirs(), *_interpreter_dirs()))


def is_own_file(path: str) -> bool:
    """A file of gradlint itself."""
    return not path.startswith("<") and os.path.commonpath([os.path.abspath(path), _OWN]) == _OWN


_OWN = os.path.dirname(os.path.abspath(__file__))


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
