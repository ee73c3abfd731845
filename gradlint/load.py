"""Find the models a target names: ``file.py``, ``file.py:Name`` or ``package.module:name``.

With no name, a file's models are: module-level ``nn.Module`` instances; ``nn.Module`` subclasses
defined in the file that construct with no arguments (unless an instance of that class is already
at module level); and zero-argument functions defined in the file that are annotated to return an
``nn.Module`` or are named ``make_*``, ``build_*``, ``create_*``, ``get_*``, or exactly ``build``,
``make``, ``create``, ``model`` or ``get_model``.
Names starting with ``_`` are skipped.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch
import torch.nn as nn

from .errors import ConstructError, GradlintError, LoadError, NoModelError, one_line
from . import sites
from .inputs import ProbeInputs
from .paths import display_path, is_own_file, split_target

# "build_resnet" or plain "build": the names people give a function that returns their model
# ("get_model" is a get_*)
FACTORY_NAME = re.compile(r"^(?:(?:make|build|create|get)_\w+|build|make|create|model)$")


@dataclass
class ModelSource:
    """One model a target names, not yet constructed."""

    target: str                              # as reported: "examples/deep_mlp.py:deep_mlp"
    path: str | None                         # file that defines it, as the user spelled it
    line: int | None
    construct: Callable[[], nn.Module]
    example_inputs: Callable[[nn.Module], ProbeInputs | None] | None
    factory: Callable | None = None          # the function or class that builds it (None: an instance)


@dataclass
class LoadFailure:
    target: str
    error: GradlintError
    traceback: str | None = None


def resolve(spec: str, seed: int = 0, warn: bool = True) -> list[ModelSource | LoadFailure]:
    """The models ``spec`` names, or one failure saying why there are none.

    The global torch RNG is seeded first, so module-level models built at import are reproducible.
    """
    where, name, is_file = split_target(spec)
    shown = display_path(where) if is_file else where  # never an absolute path in any output
    if is_file:
        spec = f"{shown}:{name}" if name is not None else shown
    torch.manual_seed(seed)
    try:
        module, path = (_import_file(where, warn), shown) if is_file else _import_module(where)
    except GradlintError as exc:
        return [LoadFailure(spec, exc, _tb())]
    lines = _top_level_lines(module)
    inputs = _module_inputs(module)
    if name is not None:
        if not hasattr(module, name):
            found = [s.target.rsplit(":", 1)[-1] for s in _discover(module, path, spec, lines, inputs)[0]]
            hint = f"models found there: {', '.join(found)}" if found else "no models found there"
            return [LoadFailure(spec, LoadError(f"{shown}: no object named '{name}' ({hint})"))]
        obj = getattr(module, name)
        src = _source_for(obj, name, module, path, lines, inputs, f"{shown}:{name}", explicit=True)
        if src is None:
            return [LoadFailure(spec, LoadError(
                f"{shown}:{name} is a {type(obj).__name__}, not an nn.Module, a Module class or a factory function"))]
        return [src]
    sources, skipped = _discover(module, path, shown, lines, inputs)
    if not sources:
        why = f"; skipped (constructor needs arguments): {', '.join(skipped)}" if skipped else ""
        return [LoadFailure(spec, NoModelError(
            f"{shown}: no model found (no nn.Module instance, zero-argument Module class or factory){why}; "
            f"name one with {shown}:NAME"))]
    return sources


def _tb() -> str:
    return traceback.format_exc()


@contextlib.contextmanager
def user_code(path: str | None = None):
    """Run user code with its prints sent to stderr, so stdout stays machine-readable, recording
    where each module it builds is constructed (for findings and suppression comments)."""
    with contextlib.redirect_stdout(sys.stderr), sites.recording():
        yield


def _import_file(spelled: str, warn: bool = True) -> ModuleType:
    path = display_path(spelled)  # how messages name it
    if not os.path.exists(spelled):
        raise LoadError(f"{path}: no such file; check the path")
    if os.path.isdir(spelled):
        raise LoadError(f"{path}: is a directory; give a .py file (or file.py:NAME)")
    apath = os.path.abspath(spelled)
    modname = "gradlint_target_" + hashlib.sha1(apath.encode()).hexdigest()[:12]
    folder = os.path.dirname(apath)
    spec = importlib.util.spec_from_file_location(modname, apath)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path}: cannot be imported as Python; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    sys.path.insert(0, folder)
    try:
        with user_code(), _import_warnings(apath, path, warn):
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(modname, None)
        raise LoadError(f"{path}:{exc.lineno}: syntax error: {exc.msg}; fix the file") from exc
    except SystemExit as exc:
        sys.modules.pop(modname, None)
        raise LoadError(f"{path}: called sys.exit({exc.code!r}) while importing; put script code under "
                        "`if __name__ == \"__main__\":`") from exc
    except BaseException as exc:
        sys.modules.pop(modname, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        line = _line_in(exc, apath)
        where = f"{path}:{line}" if line else path
        raise LoadError(f"{where}: import failed: {one_line(exc)}; fix the error (--debug shows the traceback)") from exc
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module


@contextlib.contextmanager
def _import_warnings(apath: str, shown: str, show: bool):
    """Warnings the file raises while it is imported, shown once (``show``: the file is imported again to
    analyse each model, and only the first import speaks), at the file's own line when the warning's
    stack level points past it, into the import machinery or gradlint."""
    caught: list[tuple] = []

    def record(message, category, filename, lineno, file=None, line=None):
        if os.path.abspath(filename) != apath and (filename.startswith("<") or is_own_file(filename)):
            frame = sys._getframe(1)
            while frame is not None and os.path.abspath(frame.f_code.co_filename) != apath:
                frame = frame.f_back
            filename, lineno = shown, frame.f_lineno if frame is not None else 1
        caught.append((message, category, filename, lineno))

    with warnings.catch_warnings():
        warnings.showwarning = record
        yield
    if show:
        for message, category, filename, lineno in caught:
            warnings.showwarning(message, category, filename, lineno)


def _import_module(name: str) -> tuple[ModuleType, str | None]:
    try:
        with user_code():
            module = importlib.import_module(name)
    except SystemExit as exc:
        raise LoadError(f"{name}: called sys.exit({exc.code!r}) while importing") from exc
    except ModuleNotFoundError as exc:
        raise LoadError(f"{name}: no such file or importable module ({one_line(exc)}); check the path") from exc
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"{name}: import failed: {one_line(exc)}; fix the error (--debug shows the traceback)") from exc
    path = getattr(module, "__file__", None)
    return module, display_path(path) if path else None


def _line_in(exc: BaseException, apath: str) -> int | None:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == apath:
            line = frame.lineno
    return line


def components(module: ModuleType, factories: set[str]) -> set[str]:
    """Names of the file's top-level definitions that another class of the file, or one of its model
    factories (``factories``), refers to (``self.attn = Attention(dim)``, ``block=BasicBlock``): helpers
    that a model builds, not models of their own.  ``example_inputs`` and other functions do not count."""
    path = getattr(module, "__file__", None)
    if not path:
        return set()
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return set()
    defined = {node.name: node for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef,
                                                                          ast.AsyncFunctionDef))}
    used: set[str] = set()
    for name, node in defined.items():
        if not isinstance(node, ast.ClassDef) and name not in factories:
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and inner.id != name and inner.id in defined:
                used.add(inner.id)
    return used


def _top_level_lines(module: ModuleType) -> dict[str, int]:
    path = getattr(module, "__file__", None)
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return {}
    lines: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            lines.setdefault(node.name, node.lineno)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    lines.setdefault(t.id, node.lineno)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            lines.setdefault(node.target.id, node.lineno)
    return lines


def _module_inputs(module: ModuleType) -> Callable[[nn.Module], ProbeInputs | None] | None:
    fn = getattr(module, "example_inputs", None)
    if not callable(fn) or isinstance(fn, type):
        return None

    def call(model: nn.Module) -> ProbeInputs | None:
        try:
            params = [p for p in inspect.signature(fn).parameters.values()
                      if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            params = []
        value = fn(model) if params else fn()
        return None if value is None else ProbeInputs.of(value)

    return call


def _model_inputs(model: nn.Module) -> ProbeInputs | None:
    attr = getattr(model, "example_inputs", None)
    if attr is None:
        return None
    value = attr() if callable(attr) else attr
    return None if value is None else ProbeInputs.of(value)


def needs_arguments(fn: Callable) -> list[str]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _returns_module(fn: Callable) -> bool:
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # noqa: BLE001 - unresolvable annotations just mean "not annotated"
        return False
    return isinstance(hint, type) and issubclass(hint, nn.Module)


def _discover(module, path, where, lines, inputs) -> tuple[list[ModelSource], list[str]]:
    sources: list[ModelSource] = []
    skipped: list[str] = []
    items = [(k, v) for k, v in vars(module).items() if not k.startswith("_")]
    instance_types = {type(v) for _, v in items if isinstance(v, nn.Module)}
    parts = components(module, {k for k, v in items if inspect.isfunction(v) and _is_factory(k, v, module)})
    for name, obj in items:
        own = getattr(obj, "__module__", None) == module.__name__
        if isinstance(obj, nn.Module):
            pass
        elif isinstance(obj, type) and issubclass(obj, nn.Module) and own:
            if obj in instance_types or getattr(obj, "__name__", name) in parts:
                continue  # an instance of it is analysed, or another module of the file builds it
            if needs_arguments(obj):
                skipped.append(name)
                continue
        elif inspect.isfunction(obj) and own:
            if not _is_factory(name, obj, module):
                continue
        else:
            continue
        src = _source_for(obj, name, module, path, lines, inputs, f"{where}:{name}", explicit=False)
        if src is not None:
            sources.append(src)
    return sources, skipped


def _is_factory(name: str, fn, module: ModuleType) -> bool:
    """A zero-argument function of the file annotated to return a module or named like a factory."""
    return (fn.__module__ == module.__name__ and name != "example_inputs" and not needs_arguments(fn)
            and (_returns_module(fn) or bool(FACTORY_NAME.match(name))))


def _source_for(obj, name, module, path, lines, inputs, target, explicit) -> ModelSource | None:
    line = lines.get(name)
    if isinstance(obj, nn.Module):
        construct = lambda: obj  # noqa: E731 - the instance itself
    elif isinstance(obj, type) and issubclass(obj, nn.Module):
        construct = _constructor(obj, f"{name}()", target)
    elif callable(obj) and (inspect.isfunction(obj) or explicit):
        construct = _constructor(obj, f"{name}()", target)
    else:
        return None

    def example(model: nn.Module) -> ProbeInputs | None:
        if inputs is not None:
            return inputs(model)
        return _model_inputs(model)

    return ModelSource(target, path, line, construct, example, None if isinstance(obj, nn.Module) else obj)


def sized(spec: str, key: str, value, seed: int = 0) -> ModelSource:
    """The model ``spec`` (``file.py:NAME``, a function or class) names, built with ``NAME(key=value)``: one
    size of a sweep.  Raises ``LoadError`` when ``spec`` names no such callable."""
    where, name, _ = split_target(spec)
    if name is None:
        raise LoadError(f"{spec}: --sweep needs a function or class, named as {spec}:NAME")
    found = resolve(spec, seed, warn=False)[0]
    if isinstance(found, LoadFailure):
        raise found.error
    fn = found.factory
    if fn is None:
        raise LoadError(f"{found.target}: --sweep needs a function or Module class that takes {key}=")
    params = inspect.signature(fn).parameters
    if key not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise LoadError(f"{found.target}: {name}() takes no argument {key!r} (it takes "
                        f"{', '.join(params) or 'none'}); name the argument that sets the size")
    value = int(value) if float(value).is_integer() else value
    return ModelSource(f"{found.target}[{key}={value}]", found.path, found.line,
                       _constructor(fn, f"{name}({key}={value})", found.target, {key: value}), found.example_inputs)


def _constructor(fn: Callable, call: str, target: str, kwargs: dict | None = None) -> Callable[[], nn.Module]:
    def construct() -> nn.Module:
        missing = [] if kwargs else needs_arguments(fn)
        if missing:
            raise ConstructError(f"{target}: {call} needs arguments ({', '.join(missing)}); give them defaults "
                                 "or add a zero-argument factory function")
        try:
            with user_code():
                model = fn(**(kwargs or {}))
        except SystemExit as exc:
            raise ConstructError(f"{target}: {call} called sys.exit({exc.code!r})") from exc
        except Exception as exc:  # noqa: BLE001
            raise ConstructError(f"{target}: {call} failed: {one_line(exc)}; fix the constructor "
                                 "(--debug shows the traceback)") from exc
        if not isinstance(model, nn.Module):
            raise ConstructError(f"{target}: {call} returned {type(model).__name__}, not an nn.Module")
        return model

    return construct
