"""Configuration as ruff does it: ``[tool.gradlint]`` in the nearest ``pyproject.toml`` that has the table.

Discovery walks up from a target's folder and stops at the repository root (the first folder with
``.git``); ``--config FILE`` names the file instead and ``--isolated`` reads none.  The command line
beats the file, which beats the defaults.  Which rules run is flake8's decision table: among the
select, extend-select and ignore entries a code starts with, the longest decides (ignore wins a tie).

Importing this module does not import torch: the rule registry is imported when first needed.
The format is documented in docs/configuration.md.
"""

from __future__ import annotations

import difflib
import fnmatch
import glob
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import GradlintError
from .paths import display_path
from .settings import Probe, Spec, parse_shape, specs
from .settings import key as setting_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 has no tomllib
    import tomli as tomllib

if TYPE_CHECKING:
    from .rules import Rule

from .render import FORMATS as OUTPUT_FORMATS  # noqa: E402 - one list of formats
from .vocabulary import DTYPES, family, letters  # noqa: E402,F401
from .vocabulary import SEVERITIES as FAIL_ON

KEYS = ("select", "extend-select", "ignore", "per-file-ignores", "fail-on", "output-format", "models", "timeout",
        "cache-dir", "probe", "rules")


class ConfigError(GradlintError):
    """A configuration file or option gradlint cannot use; the message names the file and the key."""

    kind = "input"


def known_rules() -> tuple[type[Rule], ...]:
    """Every rule class, plugins included."""
    from .rules import registry

    return registry()


# --- rule selection ------------------------------------------------------------------------------

def default_select() -> tuple[str, ...]:
    """GL, plus the prefix of every third-party rule."""
    plugins = {letters(cls.code) for cls in known_rules() if not cls.code.startswith("GL")}
    return ("GL", *sorted(plugins))


@dataclass(frozen=True)
class Selection:
    """One layer of rule selection: a configuration file's, or the command line's."""

    select: tuple[str, ...] | None = None       # None: not given in this layer
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def decide(self, rule: type[Rule]) -> bool | None:
        """On or off by the longest entry ``rule.code`` starts with (ignore wins a tie); None if none does."""
        code = rule.code
        # An experimental rule is reached only by a select entry naming its family (GL9) or more.
        reach = 0 if rule.enabled_by_default() else len(family(code))
        votes = [(len(e), True) for e in (*(self.select or ()), *self.extend_select)
                 if code.startswith(e) and len(e) >= reach]
        votes += [(len(e), False) for e in self.ignore if code.startswith(e)]
        if not votes:
            return None
        return max(votes, key=lambda vote: (vote[0], not vote[1]))[1]


# --- settings ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Overrides:
    """What the command line sets: None or empty where it sets nothing."""

    selection: Selection = Selection()
    fail_on: str | None = None
    output_format: str | None = None
    probe: Probe = Probe()
    timeout: float | None = None


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one configuration file (or none), merged with the command line."""

    path: Path | None = None                            # the file; None: defaults only
    folder: Path = field(default_factory=Path.cwd)      # relative paths in the file are relative to this
    selection: Selection = Selection()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rule_options: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    fail_on: str = "error"
    output_format: str = "text"
    probe: Probe = Probe()
    cli_selection: Selection = Selection()
    models: tuple[str, ...] = ()                        # project mode: the targets a bare `gradlint` analyses
    timeout: float | None = None                        # seconds each model may take (import, build, probe)
    cache_dir: str | None = None                        # the report cache's folder, relative to ``folder``

    def with_cli(self, cli: Overrides) -> Settings:
        """These settings with the command line's on top."""
        return replace(self, fail_on=cli.fail_on or self.fail_on, output_format=cli.output_format or self.output_format,
                       probe=self.probe.under(cli.probe), cli_selection=cli.selection,
                       timeout=cli.timeout if cli.timeout is not None else self.timeout)

    def model_targets(self) -> list[str]:
        """The configured models as targets the command line accepts (files relative to the configuration)."""
        out = []
        for entry in self.models:
            stem, sep, name = entry.partition(".py:")
            if sep:
                out.append(f"{display_path(str(self.folder / (stem + '.py')))}:{name}")
            elif entry.endswith(".py"):
                out.append(display_path(str(self.folder / entry)))
            else:
                out.append(entry)  # package.module:NAME
        return out

    def rules_for(self, model_file: Path | str | None) -> list[Rule]:
        """Instances of the rules selected for a model defined in ``model_file``, with the configured options."""
        ignored = self.file_ignores(model_file)
        return [cls(**self.rule_options.get(cls.code, {})) for cls in known_rules()
                if self.selected(cls) and not any(cls.code.startswith(e) for e in ignored)]

    def context_rules(self) -> list[Rule]:
        """Every rule on by default, with the configured options, selected or not: what the rules that
        read other rules' findings (GL301, GL401) judge the model by."""
        return [cls(**self.rule_options.get(cls.code, {})) for cls in known_rules() if cls.enabled_by_default()]

    def selected(self, rule: type[Rule]) -> bool:
        """The command line's entries decide the codes they match; the file's (or the defaults) the rest."""
        cli, own = self.cli_selection, self.selection
        select = cli.select if cli.select is not None else own.select if own.select is not None else default_select()
        for layer in (cli, Selection(select, own.extend_select, own.ignore)):
            decision = layer.decide(rule)
            if decision is not None:
                return decision
        return False

    def file_ignores(self, model_file: Path | str | None) -> tuple[str, ...]:
        """The per-file-ignores entries whose pattern matches ``model_file``."""
        if model_file is None:
            return ()
        path = Path(model_file).resolve()
        return tuple(code for pattern, codes in self.per_file_ignores if _file_matches(pattern, path, self.folder)
                     for code in codes)

    def probe_for(self, target: str, model_file: Path | str | None) -> Probe:
        """The probe settings of one model (``target`` as reported: ``file.py:NAME``), defaults filled in."""
        return replace(self.probe, input_shape=self.input_shape_for(target, model_file), input_shapes=None).resolved()

    def input_shape_for(self, target: str, model_file: Path | str | None) -> tuple[int, ...] | None:
        """input-shapes' entry for this model ("file.py:NAME" before "NAME"), else input-shape."""
        where, _, name = target.rpartition(":")
        by_name = None
        for key, shape in self.probe.input_shapes or ():
            place, colon, key_name = key.rpartition(":")
            if key_name != name:
                continue
            if not colon:
                by_name = by_name or shape
            elif self._same_place(place, where, model_file):
                return shape
        return by_name or self.probe.input_shape

    def _same_place(self, place: str, where: str, model_file: Path | str | None) -> bool:
        """Whether an input-shapes key's file (relative to this file's folder) or module names the model's."""
        if place.endswith(".py") or "/" in place:
            return model_file is not None and (self.folder / place).resolve() == Path(model_file).resolve()
        return place == where


def _file_matches(pattern: str, path: Path, folder: Path) -> bool:
    """As ruff: the pattern, anchored at the configuration's folder, matches the path; or it matches the file name."""
    anchored = os.path.normpath(os.path.join(glob.escape(str(folder)), pattern))
    return fnmatch.fnmatchcase(path.as_posix(), Path(anchored).as_posix()) or fnmatch.fnmatchcase(path.name, pattern)


# --- finding and reading files --------------------------------------------------------------------

def find_config(start: Path | str) -> Path | None:
    """The nearest pyproject.toml with a [tool.gradlint] table, from ``start`` up to the repository root."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _gradlint_table(_read_toml(candidate)) is not None:
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def load(path: Path | str) -> Settings:
    """The settings in one file: a pyproject.toml's [tool.gradlint] table, or a whole gradlint.toml."""
    path = Path(path).resolve()
    doc = _read_toml(path)
    if path.name == "pyproject.toml":
        where, table = _Where(display_path(str(path)), ("tool", "gradlint")), _gradlint_table(doc)
        if table is None:
            raise ConfigError(f"{where.file}: no [tool.gradlint] table")
    else:
        where, table = _Where(display_path(str(path))), doc
    return _settings(table, where, path)


def _gradlint_table(doc: dict) -> Any:
    tool = doc.get("tool")
    return tool.get("gradlint") if isinstance(tool, dict) else None


def _read_toml(path: Path) -> dict:
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"{display_path(str(path))}: cannot read it ({exc.strerror or exc})") from exc
    return _parse_toml(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _parse_toml(path: Path, mtime_ns: int, size: int) -> dict:
    """A file's TOML, read once while it stays unchanged (the file's time and size are the cache key)."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{display_path(str(path))}: invalid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{display_path(str(path))}: cannot read it ({exc})") from exc


class Resolver:
    """Which settings apply where, in one run; each configuration file is read and checked once."""

    def __init__(self, cli: Overrides = Overrides(), config: Path | str | None = None, isolated: bool = False):
        if config is not None and isolated:
            raise ConfigError("--config and --isolated cannot be used together (--isolated reads no configuration)")
        known_rules()  # a broken rule plugin is reported now, before any model runs
        self.cli = cli
        self.config = Path(config) if config is not None else None
        self.isolated = isolated
        self._found: dict[Path, Path | None] = {}
        self._loaded: dict[Path, Settings] = {}

    def for_run(self) -> Settings:
        """Run-level settings (fail-on, output-format): --config's, else those found from the working directory."""
        return self.for_folder(Path.cwd())

    def for_folder(self, folder: Path | str) -> Settings:
        """The settings for a target in ``folder`` (for ``package.module:NAME``, the working directory)."""
        if self.isolated:
            return Settings().with_cli(self.cli)
        path = self.config or self._find(Path(folder).resolve())
        return self._load(path) if path is not None else Settings().with_cli(self.cli)

    def _find(self, folder: Path) -> Path | None:
        if folder not in self._found:
            self._found[folder] = find_config(folder)
        return self._found[folder]

    def _load(self, path: Path) -> Settings:
        key = path.resolve()
        if key not in self._loaded:
            self._loaded[key] = load(key).with_cli(self.cli)
        return self._loaded[key]


# --- checking values ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Where:
    """Where a value came from, for messages: the file (or command-line option) and the key in it."""

    file: str
    keys: tuple[str, ...] = ()

    def __truediv__(self, key: str) -> _Where:
        return _Where(self.file, (*self.keys, key))

    def __str__(self) -> str:
        return ".".join(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k) for k in self.keys)

    def error(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self}: {problem}" if self.keys else f"{self.file}: {problem}")


def _settings(table: Any, where: _Where, path: Path) -> Settings:
    own = _table(table, where, KEYS)
    return Settings(
        path=path,
        folder=path.parent,
        selection=Selection(
            select=_codes(own["select"], where / "select") if "select" in own else None,
            extend_select=_codes(own.get("extend-select", []), where / "extend-select"),
            ignore=_codes(own.get("ignore", []), where / "ignore"),
        ),
        per_file_ignores=_per_file_ignores(own.get("per-file-ignores", {}), where / "per-file-ignores"),
        rule_options=_rule_options(own.get("rules", {}), where / "rules"),
        fail_on=_choice(own.get("fail-on", "error"), FAIL_ON, where / "fail-on"),
        output_format=_choice(own.get("output-format", "text"), OUTPUT_FORMATS, where / "output-format"),
        models=_targets(own.get("models", []), where / "models"),
        timeout=_positive(own["timeout"], where / "timeout") if "timeout" in own else None,
        cache_dir=_text(own["cache-dir"], where / "cache-dir") if "cache-dir" in own else None,
        probe=_probe(own.get("probe", {}), where / "probe"),
    )


def _probe(value: Any, where: _Where) -> Probe:
    table = _table(value, where, [setting_key(name) for name, _ in specs()])
    return Probe(**{name: _CHECKS[spec.kind](table[setting_key(name)], where / setting_key(name), spec)
                    for name, spec in specs() if setting_key(name) in table})


def _input_shapes(value: Any, where: _Where) -> tuple[tuple[str, tuple[int, ...]], ...]:
    shapes = []
    for key, shape in _table(value, where).items():
        place, colon, name = key.rpartition(":")
        if not name or (colon and not place):
            raise (where / key).error('a model is named "NAME" or "path/to/file.py:NAME"')
        shapes.append((key, _shape(shape, where / key)))
    return tuple(shapes)


def _per_file_ignores(value: Any, where: _Where) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((pattern, _codes(codes, where / pattern)) for pattern, codes in _table(value, where).items())


def _rule_options(value: Any, where: _Where) -> dict[str, dict[str, float]]:
    rules = {cls.code: cls for cls in known_rules()}
    codes_by_name = {cls.name: cls.code for cls in known_rules()}
    options = {}
    for code, given in _table(value, where).items():
        if code not in rules:
            hint = (f" (did you mean {codes_by_name[code]}?)" if code in codes_by_name
                    else _did_you_mean(code.upper(), rules))
            raise ConfigError(f"{where.file}: unknown rule {where / code}{hint}")
        given = _table(given, where / code, rules[code].options)
        options[code] = {key: _number(v, where / code / key) for key, v in given.items()}
    return options


def parse_codes(values: Iterable[str], option: str) -> tuple[str, ...] | None:
    """A command-line option's comma-separated codes and prefixes (repeatable); None when not given."""
    values = list(values)
    if not values:
        return None
    entries = [e.strip() for v in values for e in v.split(",") if e.strip()]
    return tuple(_code(e, _Where(option)) for e in entries)


def _codes(value: Any, where: _Where) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.error(f'expected a list of rule codes or prefixes such as ["GL1", "GL401"], got {_show(value)}')
    return tuple(_code(v, where) for v in value)


def _code(entry: str, where: _Where) -> str:
    """A rule code or a prefix of at least one known code."""
    codes = [cls.code for cls in known_rules()]
    if entry and any(code.startswith(entry) for code in codes):
        return entry
    prefixes = {code[:n] for code in codes for n in range(2, len(code) + 1)}
    raise where.error(f"unknown rule code or prefix {_show(entry)}{_did_you_mean(entry.upper(), prefixes)}")


def _table(value: Any, where: _Where, allowed: Iterable[str] | None = None) -> dict:
    if not isinstance(value, dict):
        raise where.error(f"expected a table, got {_show(value)}")
    if allowed is not None:
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                hint = _did_you_mean(key, allowed) or (
                    f" (expected one of {', '.join(allowed)})" if allowed else " (nothing is allowed here)")
                raise ConfigError(f"{where.file}: unknown key {where / key}{hint}")
    return value


def _choice(value: Any, choices: tuple[str, ...], where: _Where) -> str:
    if not isinstance(value, str) or value not in choices:
        raise where.error(f"{_show(value)} is not one of {', '.join(choices)}")
    return value


def _integer(value: Any, where: _Where, minimum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise where.error(f"expected an integer, got {_show(value)}")
    if minimum is not None and value < minimum:
        raise where.error(f"{value} is too small; it must be at least {minimum}")
    return value


def _number(value: Any, where: _Where) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise where.error(f"expected a number, got {_show(value)}")
    return value


def _positive(value: Any, where: _Where) -> float:
    number = _number(value, where)
    if number <= 0:
        raise where.error(f"{number} is not a positive number of seconds")
    return float(number)


def _targets(value: Any, where: _Where) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise where.error(f'expected a list of targets such as ["src/models/resnet.py:build"], got {_show(value)}')
    return tuple(value)


def _text(value: Any, where: _Where) -> str:
    if not isinstance(value, str) or not value:
        raise where.error(f"expected a non-empty string, got {_show(value)}")
    return value


def _shape(value: Any, where: _Where) -> tuple[int, ...]:
    try:
        if isinstance(value, str):
            raise ValueError("a TOML shape is a list")
        return parse_shape(value)
    except ValueError:
        raise where.error(f"expected positive integers without the batch, such as [3, 32, 32], got {_show(value)}") \
            from None


# How each kind of probe setting is checked (gradlint.settings declares which kind each one is).
_CHECKS: dict[str, Callable[[Any, _Where, Spec], Any]] = {
    "integer": lambda v, w, spec: _integer(v, w, minimum=spec.minimum),
    "text": lambda v, w, spec: _text(v, w),
    "choice": lambda v, w, spec: _choice(v, spec.choices, w),
    "shape": lambda v, w, spec: _shape(v, w),
    "shapes": lambda v, w, spec: _input_shapes(v, w),
}


def _show(value: Any) -> str:
    """A value roughly as TOML spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return json.dumps(value, default=str)


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean {match[0]}?)" if match else ""
