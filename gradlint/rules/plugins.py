"""Third-party rules: entry points in the group ``gradlint.rules``.

The entry point's name is the code prefix the package owns (e.g. ``ACME``); it loads a rule class or
a sequence of rule classes, each with a code under that prefix (``ACME101``).  A plugin that fails
to load, or claims codes it does not own or that already exist, is an error naming the plugin.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from ..errors import GradlintError
from ..vocabulary import is_code, letters
from .base import Rule

GROUP = "gradlint.rules"


class PluginError(GradlintError):
    kind = "input"


def plugin_rules(builtin: tuple[type[Rule], ...]) -> tuple[type[Rule], ...]:
    return _load(tuple(builtin))


@lru_cache(maxsize=None)
def _load(builtin: tuple[type[Rule], ...]) -> tuple[type[Rule], ...]:
    seen = {cls.code: "gradlint" for cls in builtin}
    found: list[type[Rule]] = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        prefix = ep.name
        if not prefix or letters(prefix) != prefix or len(prefix) > 8 or prefix == "GL":
            raise PluginError(f"rule plugin {ep.value!r}: entry point name {prefix!r} must be an upper-case code "
                              "prefix of 1-8 letters other than GL (it is the prefix the plugin owns)")
        try:
            loaded = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not look like a broken model
            raise PluginError(f"rule plugin {prefix} ({ep.value}) failed to load: {exc}") from exc
        classes = list(loaded) if isinstance(loaded, (list, tuple)) else [loaded]
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, Rule)):
                raise PluginError(f"rule plugin {prefix} ({ep.value}): {cls!r} is not a gradlint Rule class")
            code = getattr(cls, "code", "")
            if not is_code(code) or letters(code) != prefix:
                raise PluginError(f"rule plugin {prefix} ({ep.value}): code {code!r} of {cls.__name__} is not "
                                  f"{prefix} followed by three digits")
            if code in seen:
                raise PluginError(f"rule plugin {prefix} ({ep.value}): code {code} is already taken by {seen[code]}")
            seen[code] = prefix
            found.append(cls)
    return tuple(sorted(found, key=lambda c: c.code))
