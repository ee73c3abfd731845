"""Which findings ``--fix`` can fix, and with which source edits: read from the frozen results (the
construction sites the probe recorded), never by running the model.

- GL404: ``bias=False`` on the constructor call of each layer whose bias a norm cancels (safe).
- GL403 on a model whose residual blocks torchvision's ``resnet*``, ``resnext*`` or ``wide_resnet*``
  built: ``zero_init_residual=True`` on that call (safe).
- Any finding whose rule names a ``gradlint.init`` change that applies to the model (``what_if``), when
  a top-level function of the file builds it: ``gradlint.init.<change>(model)`` after the
  construction (unsafe: it changes the initial weights the model trains from).
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass

from .. import changes
from ..paths import split_target
from ..report import Finding, Layer, TargetResult
from ..rules.base import depth_layers
from .source import Keyword

TORCHVISION_RESNETS = re.compile(r"\b(resnet\d+|resnext\w+|wide_resnet\w+)\s*\(")


@dataclass(frozen=True)
class Edit:
    file: str                                   # absolute path
    keyword: Keyword | None = None
    init: tuple[str, str] | None = None         # (builder function, call: gradlint.init.orthogonal_)


@dataclass(frozen=True)
class Fix:
    code: str
    target: str
    path: str | None                 # the finding's location, as the report shows it
    line: int | None
    safe: bool
    description: str                 # what the edit does
    edits: tuple[Edit, ...] = ()
    reason: str | None = None        # why it cannot be made automatically (then no edits)


def plan(results: list[TargetResult], rules: dict) -> list[Fix]:
    """A fix, or the reason there is none, for each finding of ``results`` that has a fix kind; ``rules``
    maps codes to the rule instances that ran (their ``what_if`` names the init changes that fix them)."""
    sites = _layers_by_site(results)
    fixes = []
    for r in results:
        if not r.ok:
            continue
        for f in r.findings:
            fix = _fix_for(r, f, rules.get(f.code), sites)
            if fix is not None:
                fixes.append(fix)
    return fixes


def _fix_for(r: TargetResult, f: Finding, rule, sites) -> Fix | None:
    if f.code == "GL404":
        return _bias_fix(r, f, sites)
    if f.code == "GL403":
        fix = _torchvision_fix(r, f)
        if fix is not None:
            return fix
    change = next((c for c in getattr(rule, "what_if", ()) if c in r.report.applicable_changes), None)
    return _init_fix(r, f, change) if change is not None else None


def _fix(r: TargetResult, f: Finding, safe: bool, description: str, edits=(), reason=None) -> Fix:
    return Fix(f.code, r.target, f.path, f.line, safe, description, tuple(edits), reason)


def _layers_by_site(results: list[TargetResult]) -> dict[tuple[str, int, str], list[tuple[str, Layer]]]:
    """(file, line, layer class) -> every (target, layer) of the run constructed there."""
    found: dict = {}
    for r in results:
        for x in r.report.layers if r.ok else ():
            if x.kind == "layer" and x.path and x.line and x.library is None:
                found.setdefault((os.path.abspath(x.path), x.line, x.op), []).append((r.target, x))
    return found


def _bias_fix(r: TargetResult, f: Finding, sites) -> Fix:
    bad = [x for x in depth_layers(r.report) if x.bias_cancelled_by]   # what GL404 flags
    description = f"bias=False on {_names(bad)}"
    edits = []
    for x in bad:
        reason = _bias_site_problem(x, sites)
        if reason is not None:
            return _fix(r, f, True, description, reason=reason)
        position = _bias_position(x.op)
        keyword = Keyword(x.line, (x.op,), "bias", "False", position, replaces=("True",))
        edits.append(Edit(os.path.abspath(x.path), keyword=keyword))
    return _fix(r, f, True, description, dict.fromkeys(edits))


def _bias_site_problem(x: Layer, sites) -> str | None:
    """Why the call that built ``x`` cannot get ``bias=False``; None when it can."""
    if x.library is not None:
        return (f"{x.name} is constructed inside an installed package ({x.library}); gradlint edits only your "
                "own files")
    if not x.path or not x.line:
        return f"no construction site was recorded for {x.name}"
    if _bias_position(x.op) is False:
        return f"{x.name} is a {x.op}, not a torch.nn layer constructed with bias="
    others = [(t, y) for t, y in sites.get((os.path.abspath(x.path), x.line, x.op), []) if not y.bias_cancelled_by]
    if others:
        t, y = others[0]
        return (f"the {x.op} call at {x.path}:{x.line} also builds {y.name} of {t}, whose bias no norm cancels; "
                "bias=False there would remove that bias too")
    return None


def _bias_position(op: str) -> int | None | bool:
    """Where torch.nn's ``op`` takes ``bias`` positionally (None: keyword only); False: no such layer."""
    import torch.nn as nn

    cls = getattr(nn, op, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return False
    names = list(inspect.signature(cls).parameters)
    return names.index("bias") if "bias" in names else False


def _names(layers: list[Layer]) -> str:
    shown = ", ".join(x.name for x in layers[:4])
    return shown + (f" (+{len(layers) - 4} more)" if len(layers) > 4 else "")


def _torchvision_fix(r: TargetResult, f: Finding) -> Fix | None:
    """``zero_init_residual=True`` on the user's calls that built torchvision ResNet blocks; None when
    torchvision built none of the model's layers."""
    calls = {(x.path, x.line) for x in r.report.layers
             if x.library and x.library.startswith("torchvision/models/") and x.path and x.line}
    if not calls:
        return None
    description = "zero_init_residual=True on the torchvision call that builds the model"
    edits = []
    for path, line in sorted(calls):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            return _fix(r, f, True, description, reason=f"{path} cannot be read ({exc})")
        names = tuple(sorted(set(TORCHVISION_RESNETS.findall(text))))
        if not names:
            return _fix(r, f, True, description, reason=f"the model is built at {path}:{line}, by no call "
                                                        "to torchvision's resnet*, resnext* or wide_resnet*")
        edits.append(Edit(os.path.abspath(path), keyword=Keyword(line, names, "zero_init_residual", "True")))
    return _fix(r, f, True, description, edits)


def _init_fix(r: TargetResult, f: Finding, change: str) -> Fix:
    call = f"gradlint.init.{changes.function(change)}"
    description = f"{call}(model) after the model is constructed ({changes.description(change)})"
    where, name, is_file = split_target(r.target)
    if not is_file or name is None or r.report.path is None:
        return _fix(r, f, False, description, reason="the target names no function of a file that builds the "
                                                     "model; not fixable automatically")
    return _fix(r, f, False, description, [Edit(os.path.abspath(where), init=(name, call))])
