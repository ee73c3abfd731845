"""Where each module was constructed: the user's source line, for findings and suppression comments.

While ``recording()`` is active (gradlint holds it around importing a target and constructing its
models), every ``nn.Module`` remembers the first line outside torch and gradlint that is not one of
its own constructors: for ``self.fc = nn.Linear(8, 8)`` that is the line of the assignment, for a
layer built in a factory loop the line that calls ``nn.Linear``.  Modules created by
``copy.deepcopy`` (e.g. ``nn.TransformerEncoder``'s layers) run no constructor and have no site.
"""

from __future__ import annotations

import contextlib
import sys
import weakref
from collections.abc import Iterator

import torch.nn as nn

from .paths import display_path, is_library_file

_sites: "weakref.WeakKeyDictionary[nn.Module, tuple[str, int]]" = weakref.WeakKeyDictionary()
_active = 0


def site_of(module: nn.Module) -> tuple[str, int] | None:
    """(display path, line) where ``module`` was constructed, if that was recorded."""
    try:
        return _sites.get(module)
    except TypeError:  # an unhashable module
        return None


def copy_sites(original: nn.Module, memo: dict) -> None:
    """Give the modules of ``copy.deepcopy(original, memo)`` the construction sites of their originals."""
    for module in original.modules():
        site = site_of(module)
        twin = memo.get(id(module))
        if site is not None and isinstance(twin, nn.Module):
            try:
                _sites[twin] = site
            except TypeError:
                pass


@contextlib.contextmanager
def recording() -> Iterator[None]:
    """Record construction sites of modules built inside the block (re-entrant)."""
    global _active
    if _active:
        _active += 1
        try:
            yield
        finally:
            _active -= 1
        return
    original = nn.Module.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        try:
            if self not in _sites:
                where = _caller(self)
                if where is not None:
                    _sites[self] = where
        except TypeError:
            pass

    nn.Module.__init__ = __init__
    _active = 1
    try:
        yield
    finally:
        _active = 0
        nn.Module.__init__ = original


def _caller(module: nn.Module) -> tuple[str, int] | None:
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        own = frame.f_locals.get("self") is module and code.co_name == "__init__"
        if not own and not is_library_file(code.co_filename):
            return display_path(code.co_filename), frame.f_lineno
        frame = frame.f_back
    return None
