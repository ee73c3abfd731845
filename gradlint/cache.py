"""The report cache (``.gradlint_cache``): a model whose measurement would come out the same is not probed again.

An entry is the *measured* part of one model's result: its report and its ``--what-if`` variants'
reports, never findings.  Rules run on every report, cached or fresh (they are pure functions of it), so
``--select``, severities, rule options and ``# gradlint: ignore`` comments apply as they do to a probe.

The key is a digest of everything that decides those numbers (docs/configuration.md, "Cache"):

- gradlint's version and a digest of its own code, torch's version, Python's, and this format;
- every probe setting, the threads the probe will use, and the ``--what-if`` changes;
- the model's name, file and definition line, and where its inputs come from;
- the inputs themselves: every tensor's shape, dtype and bytes (made or inferred before the key);
- every module: its path, class, ``extra_repr`` (strides, eps, ...), training flag, and the construction
  site the report prints (so a layer whose line moved is probed again: a cached report would point at the
  old line);
- every parameter and buffer: name, shape, dtype, device, requires_grad, and its bytes (the init's
  fingerprint: the initial values decide the numbers);
- the code: the torch.fx graph of the forward (each node's op, target and arguments, no line numbers), and
  the syntax tree (not the text: comments and docstrings do not count) of user code the graph calls without tracing
  into it (a custom leaf module, a ``torch.fx.wrap`` function, an ``autograd.Function``).  A model torch.fx
  cannot trace is keyed by the syntax trees of the project files loaded and the files defining its classes.

A file target's list of models is kept as well (``listings/``), reused while the file and the project files
its import loaded keep their bytes, so a warm run forks no child only to import the file and list it.

Entries are pickles, written to a temporary file and renamed into place, so parallel runs never see half an
entry; one that cannot be read is ignored and the model probed.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import inspect
import os
import pickle
import sys
import tempfile
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.fx as fx
import torch.nn as nn

from . import __version__, sites
from .paths import is_installed_file, is_library_file, is_own_file, non_user_folders

FORMAT = 1                    # bump when an entry's layout changes
NAME = ".gradlint_cache"
GITIGNORE = "# Automatically created by gradlint.\n*\n"
CACHEDIR_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by gradlint.\n"
                "# For information about cache directory tags, see https://bford.info/cachedir/\n")


@dataclass(frozen=True)
class Entry:
    """One model's measurement: its report and its what-if variants (their findings left out)."""

    key: str
    report: object
    what_if: tuple = ()

    def variants(self, rules, context) -> tuple:
        """The what-if variants judged by ``rules``, as ``whatif.run`` judges them."""
        from .rules import judge

        return tuple(replace(w, findings=judge(w.report, rules, context)[0]) if w.report is not None else w
                     for w in self.what_if)


@dataclass(frozen=True)
class Cache:
    """A cache folder.  Nothing is created until an entry is written."""

    folder: Path

    def entry_path(self, key: str) -> Path:
        return self.folder / "reports" / f"{key}.pickle"

    def load(self, key: str) -> Entry | None:
        """The entry stored under ``key``; None when there is none or it cannot be read."""
        entry = self._read(self.entry_path(key))
        return entry if isinstance(entry, Entry) and entry.key == key else None

    def store(self, key: str, report, what_if: tuple) -> None:
        """Keep a model's measurement (its findings left out)."""
        self._write(self.entry_path(key), Entry(key, report, tuple(replace(w, findings=()) for w in what_if)))

    def _write(self, target: Path, entry) -> None:
        """Write atomically (a temporary file renamed into place); a folder that cannot be written is no
        error: the run just is not cached."""
        try:
            self._create()
            target.parent.mkdir(exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    pickle.dump(entry, f, protocol=pickle.HIGHEST_PROTOCOL)
                os.chmod(temporary, 0o666 & ~_umask())   # mkstemp's 0600 is for secrets; these are not
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            return

    def load_listing(self, spec: str, seed: int) -> list[str] | None:
        """The models a file target named when it was last listed, if no project file it loaded has changed
        since (the file itself included); None otherwise, or for a module target."""
        entry = self._read(self.listing_path(spec, seed))
        if not (isinstance(entry, tuple) and len(entry) == 3 and entry[0] == _listing_key(spec, seed)):
            return None
        _, targets, files = entry
        return list(targets) if all(_file_digest(path) == digest for path, digest in files) else None

    def store_listing(self, spec: str, seed: int, targets: list[str], files: tuple) -> None:
        """Keep a file target's listing, with the digests of the project files its import loaded."""
        key = _listing_key(spec, seed)
        if key is not None:
            self._write(self.listing_path(spec, seed), (key, tuple(targets), files))

    def listing_path(self, spec: str, seed: int) -> Path:
        name = hashlib.sha256(repr((spec, seed, os.getcwd())).encode()).hexdigest()
        return self.folder / "listings" / f"{name}.pickle"

    def _read(self, path: Path):
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except Exception:  # noqa: BLE001 - missing, truncated, corrupt or from another gradlint: do the work
            return None

    def _create(self) -> None:
        """The folder, marked as ruff marks its own: a ``.gitignore`` of ``*`` and a ``CACHEDIR.TAG``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", GITIGNORE), ("CACHEDIR.TAG", CACHEDIR_TAG)):
            path = self.folder / name
            if not path.exists():
                with contextlib.suppress(OSError):
                    path.write_text(text, encoding="utf-8")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def key(model: nn.Module, given, subject, settings, what_if: tuple[str, ...]) -> str | None:
    """The digest of everything that decides ``model``'s measured report (module docstring); None when
    something in it cannot be described (the model is then probed, and nothing is cached)."""
    h = hashlib.sha256()
    try:
        _feed(h, "versions", FORMAT, __version__, own_code(), torch.__version__, sys.version_info[:2])
        threads = settings.threads if settings.threads is not None else torch.get_num_threads()
        _feed(h, "settings", repr(settings), threads, tuple(what_if))
        _feed(h, "subject", repr(subject))
        _feed(h, "inputs", _value(given.args, h), _value(given.kwargs, h), given.data_input, given.model_output)
        _modules(h, model)
        _state(h, model)
        _code(h, model, given)
    except Exception:  # noqa: BLE001 - an odd tensor or object: no key, so no cache, never a wrong report
        return None
    return h.hexdigest()


def _feed(h, *parts) -> None:
    h.update(repr(parts).encode("utf-8", "backslashreplace"))
    h.update(b"\0")


def _tensor(t: torch.Tensor, h) -> tuple:
    """A tensor's description, its bytes fed to ``h``."""
    t = t.detach()
    if t.is_sparse or t.is_quantized or t.device.type == "meta":
        raise TypeError(f"cannot fingerprint a {t.layout} {t.dtype} tensor on {t.device}")
    data = t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    h.update(memoryview(data))
    return ("tensor", tuple(t.shape), str(t.dtype), str(t.device), data.nbytes)


def _value(value, h):
    """Nested inputs or arguments as plain, stable values; tensors fingerprinted."""
    if isinstance(value, torch.Tensor):
        return _tensor(value, h)
    if isinstance(value, (list, tuple)):
        return type(value).__name__, tuple(_value(v, h) for v in value)
    if isinstance(value, dict):
        return "dict", tuple((k, _value(v, h)) for k, v in value.items())
    if isinstance(value, fx.Node):
        return f"%{value.name}"
    if callable(value) and hasattr(value, "__qualname__"):
        return _name(value)
    return repr(value)


def _name(obj) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None) or getattr(obj, '__name__', '')}"


def _modules(h, model: nn.Module) -> None:
    """Each module: path, class, configuration, training flag, the construction sites the report prints, and
    its forward hooks (their code, when it is the user's)."""
    for name, m in model.named_modules():
        site = sites.site_of(m) or sites.declared_site(model, name)
        hooks = tuple((_name(f), _tree(f)) for f in (*m._forward_pre_hooks.values(), *m._forward_hooks.values()))
        _feed(h, "module", name, _name(type(m)), m.extra_repr(), m.training, site, sites.library_site_of(m), hooks)


def _state(h, model: nn.Module) -> None:
    """Every parameter and buffer, by name (tied ones under each name), and their values."""
    _feed(h, "tied", tuple(n for n, _ in model.named_parameters(remove_duplicate=False)))
    for name, p in model.named_parameters():
        _feed(h, "parameter", name, p.requires_grad, _tensor(p, h))
    for name, b in model.named_buffers():
        _feed(h, "buffer", name, _tensor(b, h))


def _code(h, model: nn.Module, given) -> None:
    """The forward as torch.fx traces it, or, when it cannot, the project's code loaded for it."""
    from .capture import fx as fx_tier

    before = set(vars(model))
    try:
        graph = fx_tier.trace(model, given.positional(model)[1])
    except Exception:  # noqa: BLE001 - the export and hooks tiers run the model instead of tracing it
        graph = None
    finally:
        added = set(vars(model)) - before   # torch.fx stores constant tensors on the model: take them away after
    try:
        if graph is None:
            _sources(h, model)
            return
        for node in graph.nodes:
            _feed(h, node.op, node.name, *_target(model, node, h), _value((node.args, node.kwargs), h))
    finally:
        for name in added:
            with contextlib.suppress(AttributeError):
                delattr(model, name)


def _target(model: nn.Module, node: fx.Node, h) -> tuple:
    """A node's target, and the syntax tree of user code the graph runs without tracing into it."""
    target = node.target
    if node.op == "call_module":   # a leaf: torch's module, or a user's (its forward may be inherited)
        return target, tuple(_tree(cls) for cls in type(model.get_submodule(target)).__mro__)
    if node.op == "get_attr":
        value = model
        for part in target.split("."):
            value = getattr(value, part)
        return target, _tensor(value, h) if isinstance(value, torch.Tensor) else repr(type(value))
    if node.op == "call_function":
        return _name(target), _tree(getattr(target, "_gradlint_class", target))
    return (target,)


@functools.lru_cache(maxsize=1024)
def _tree(obj) -> str:
    """The syntax tree of a function's or class's source when it is user code (comments, docstrings and line
    numbers do not count); empty for torch's, gradlint's and installed packages' code."""
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        return ""
    if not path or _not_user(path):
        return ""
    return _syntax(textwrap.dedent(inspect.getsource(obj)))


def _syntax(source: str | bytes) -> str:
    """The code's syntax tree without comments, line numbers or docstrings: what runs."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _not_user(path: str) -> bool:
    return is_library_file(path) or is_installed_file(path) or is_own_file(path)


def _sources(h, model: nn.Module) -> None:
    """For a model torch.fx cannot trace: the syntax trees of every user file loaded (the model's file and
    what it imports of the project), and the bytes of the installed files defining the model's classes."""
    users = _user_files()
    for path in users:
        with open(path, "rb") as f:
            _feed(h, "source", path, _syntax(f.read()))
    classes = {c for m in model.modules() for c in type(m).__mro__ if c.__module__ not in ("builtins",)}
    files = sorted({f for f in (_file_of(c) for c in classes) if f and not is_library_file(f) and f not in users})
    for path in files:
        with open(path, "rb") as f:
            _feed(h, "library source", path, hashlib.sha256(f.read()).hexdigest())


def project_files() -> tuple[tuple[str, str], ...]:
    """(path, digest of its bytes) of every project file loaded in this process: what a listing depends on."""
    return tuple((path, _file_digest(path)) for path in _user_files())


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _listing_key(spec: str, seed: int) -> str | None:
    """What a file target's listing is stored under, besides its files: the versions, and the file's bytes."""
    from .paths import split_target

    where, _, is_file = split_target(spec)
    digest = _file_digest(where) if is_file else None
    return None if digest is None else repr((FORMAT, __version__, own_code(), torch.__version__, digest))


def _file_of(cls: type) -> str | None:
    try:
        return inspect.getsourcefile(cls)
    except TypeError:
        return None


def _user_files() -> list[str]:
    """The project's own files loaded in this process (not torch's, gradlint's, the standard library's or an
    installed package's), sorted."""
    loaded = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    skip = non_user_folders()
    return sorted(f for f in loaded if isinstance(f, str) and f.endswith(".py") and os.path.isabs(f)
                  and not f.startswith(skip) and not _not_user(f) and os.path.isfile(f))


@functools.lru_cache(maxsize=1)
def own_code() -> str:
    """A digest of gradlint's own source: a checkout whose code changed under the same version string
    must not reuse its reports."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def folder_for(config_folder: Path | None, given: str | None, configured: str | None) -> Path:
    """Where the cache lives: ``--cache-dir`` (or ``GRADLINT_CACHE_DIR``), else the configuration's
    ``cache-dir`` (relative to its folder), else ``.gradlint_cache`` in the folder holding the configuration,
    else in the working directory."""
    base = config_folder or Path.cwd()
    if given:
        return Path(given)
    if configured:
        return base / configured
    return base / NAME
