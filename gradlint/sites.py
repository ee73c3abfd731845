"""Where each module was constructed: the user's source line, for findings and suppression comments.

While ``recording()`` is active (gradlint holds it around importing a target and constructing its
models), every ``nn.Module`` remembers, walking out from its constructor past torch, gradlint and its
own ``__init__`` frames, the first line of user code: for ``self.fc = nn.Linear(8, 8)`` that is the
line of the assignment, for a layer built in a factory loop the line that calls ``nn.Linear``, for a
layer of ``torchvision.models.resnet50()`` the user's line that calls ``resnet50()``.  A module built
inside an installed package also remembers the first line there, its *library site*
(``torchvision/models/resnet.py:56``).  Modules created by ``copy.deepcopy`` (e.g.
``nn.TransformerEncoder``'s layers) run no constructor and have no site.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import sys
import textwrap
import weakref
from collections.abc import Iterator

import torch.nn as nn

from .paths import display_path, is_installed_file, is_library_file, is_own_file

# module -> (user site as (display path, line), library site as "path:line"); either may be None
Sites = tuple[tuple[str, int] | None, str | None]
_sites: "weakref.WeakKeyDictionary[nn.Module, Sites]" = weakref.WeakKeyDictionary()
_active = 0


def site_of(module: nn.Module) -> tuple[str, int] | None:
    """(display path, line) of the user's code that constructed ``module``, if that was recorded."""
    return _recorded(module)[0]


def library_site_of(module: nn.Module) -> str | None:
    """``"torchvision/models/resnet.py:56"``: where an installed package constructed ``module``, if one did."""
    return _recorded(module)[1]


def _recorded(module: nn.Module) -> Sites:
    try:
        return _sites.get(module, (None, None))
    except TypeError:  # an unhashable module
        return None, None


def declared_site(root: nn.Module, path: str) -> tuple[str, int] | None:
    """For a module built before gradlint could record it (a model handed to ``gradlint.lint``): the
    line of user code that assigns it, ``self.<name> = ...``, in the class of the nearest ancestor
    that is user code (a layer inside an ``nn.ModuleList`` points at the list's assignment)."""
    parts = path.split(".") if path else []
    for depth in range(len(parts), 0, -1):
        try:
            parent = root.get_submodule(".".join(parts[:depth - 1]))
        except AttributeError:
            return None
        for cls in type(parent).__mro__:
            line = _assignments(cls).get(parts[depth - 1])
            if line is not None:
                return line
    return None


@functools.lru_cache(maxsize=256)
def _assignments(cls: type) -> dict[str, tuple[str, int]]:
    """``self.<name> = ...`` in the methods of a user-code class: name -> (display path, first line)."""
    try:
        path = inspect.getsourcefile(cls)
        if path is None or is_library_file(path) or is_installed_file(path):
            return {}
        lines, start = inspect.getsourcelines(cls)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return {}
    found: dict[str, tuple[str, int]] = {}
    where = display_path(path)
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for t in targets:
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                found.setdefault(t.attr, (where, start + node.lineno - 1))
    return found


def copy_sites(original: nn.Module, memo: dict) -> None:
    """Give the modules of ``copy.deepcopy(original, memo)`` the construction sites of their originals."""
    for module in original.modules():
        recorded = _recorded(module)
        twin = memo.get(id(module))
        if recorded != (None, None) and isinstance(twin, nn.Module):
            try:
                _sites[twin] = recorded
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
                if where != (None, None):
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


def _caller(module: nn.Module) -> Sites:
    library = None
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if is_own_file(code.co_filename):
            break  # gradlint called the code that built it: what lies beyond is the launcher, not the user's
        own = frame.f_locals.get("self") is module and code.co_name == "__init__"
        if not own and not is_library_file(code.co_filename):
            if not is_installed_file(code.co_filename):
                return (display_path(code.co_filename), frame.f_lineno), library
            if library is None:  # the innermost installed frame: the line in the package that built it
                library = f"{display_path(code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None, library
