"""``gradlint --fix`` on a copy of the construction code of the zoo's BatchNorm models.

For each model (default: the BatchNorm models of ``benchmarks/zoo.py``): lint the installed model from a
one-line builder; when GL404 flags layer biases, copy the installed files that construct those layers
(their *library sites*, e.g. ``torchvision/models/vgg.py``) into a temporary folder, so that they are
the user's own code there (relative imports spelled absolute, nothing else changed), build the model
from the copy, and run ``gradlint build.py:build --fix`` on it.  Prints one row per model:

- GL404 before: layer biases GL404 flags on the copy, before the fix;
- after: the same after ``--fix`` (from a fresh lint of the edited copy);
- files changed, and whether each changed file is byte-identical to the copy apart from the edit
  (difflib: every differing line is a constructor line that only gained ``bias=False``, or a new line
  holding only ``bias=False,``);
- the fix's outcome as ``--fix`` reported it.

With ``--with-plain`` a vgg*_bn row also lints the plain vggN from the same copy in the same run: the
one ``nn.Conv2d`` call in ``make_layers`` then builds layers no norm follows, and ``--fix`` must refuse
to edit it (and leave the copy unchanged).

Copying the installed file at run time into a temporary folder keeps third-party code out of this
repository.  torchvision and timm live in the zoo environment, which needs libcst for ``--fix``:

    /opt/zoo/bin/pip install libcst
    PYTHONPATH=$PWD /opt/zoo/bin/python benchmarks/fix_zoo.py [--models vgg19_bn,vgg11_bn] [--all-vgg] [--with-plain] [--size 64]
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The zoo's models with BatchNorm (benchmarks/zoo.py builds them at their library's defaults)
ZOO_BN = ("resnet18", "resnet50", "resnet50_zero_init", "vgg19_bn", "densenet121", "mobilenet_v3_small",
          "efficientnet_b0", "timm/regnety_008")
EXTRA_BN = ("vgg11_bn", "vgg13_bn", "vgg16_bn")   # the rest of torchvision's vgg*_bn, with --all-vgg

# torchvision registers every model function; a copy registering the same names again would raise, so the
# builder of the copy turns registration into a no-op first (the copied file itself is not touched).
COPY_BUILDER = """\
import torchvision.models._api as _api

_api.register_model = lambda name=None: (lambda fn: fn)
from {module} import {function}


def build():
    return {function}({arguments})
"""
INSTALLED_BUILDER = """\
{imports}


def build():
    return {call}
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated names (default: {', '.join(ZOO_BN)})")
    parser.add_argument("--all-vgg", action="store_true", help=f"also {', '.join(EXTRA_BN)}")
    parser.add_argument("--with-plain", action="store_true",
                        help="for vgg*_bn, also lint the plain vggN from the same copy in the same run: make_layers' "
                             "Conv2d call then builds layers without a norm too, and --fix must refuse to edit it")
    parser.add_argument("--size", type=int, default=64, help="input height and width (default 64)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per gradlint run (default 900)")
    return parser.parse_args(argv)


def gradlint(folder: Path, *args: str, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "gradlint", *args, "--format", "json"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output") from None


def flagged(doc: dict) -> list[dict]:
    """The layers GL404 flags in the one result of ``doc``."""
    (r,) = doc["results"]
    if not r["ok"]:
        raise RuntimeError(r["error"]["message"])
    return [x for x in r["layers"] if x.get("bias_cancelled_by")]


def installed_builder(name: str) -> tuple[str, str, str]:
    """(import line, function, arguments) that build zoo model ``name`` from its installed library."""
    if name.startswith("timm/"):
        return "import timm", "timm.create_model", f"{name[5:]!r}, pretrained=False"
    arguments = "weights=None" + (", zero_init_residual=True" if name.endswith("_zero_init") else "")
    function = name.removesuffix("_zero_init")
    return f"from torchvision.models import {function}", function, arguments


def copy_package_file(library_site: str, folder: Path) -> tuple[Path, str]:
    """Copy the installed file of ``torchvision/models/vgg.py:56`` into ``folder`` as ``copy_vgg.py``, its
    relative imports spelled absolute; (the copy, its module name)."""
    import importlib.util

    rel = library_site.rsplit(":", 1)[0]
    package = rel.split("/")[0]
    spec = importlib.util.find_spec(package)
    source = Path(spec.submodule_search_locations[0]).parent / rel
    parts = rel.removesuffix(".py").split("/")

    def absolute(m: re.Match) -> str:
        dots, rest = len(m.group(1)), m.group(2)
        base = parts[:len(parts) - dots]
        return f"from {'.'.join(base + ([rest] if rest else []))} import"

    text = re.sub(r"^from (\.+)([\w.]*) import", absolute, source.read_text(encoding="utf-8"), flags=re.MULTILINE)
    module = "copy_" + parts[-1]
    (folder / f"{module}.py").write_text(text, encoding="utf-8")
    return folder / f"{module}.py", module


def only_bias_edits(before: str, after: str) -> bool:
    """Every line that differs only gained ``bias=False`` (or is a new line holding just ``bias=False,``)."""
    a, b = before.splitlines(True), after.splitlines(True)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag == "insert" and all(line.strip() == "bias=False," for line in b[j1:j2]):
            continue
        if tag != "replace" or i2 - i1 != j2 - j1:
            return False
        for old, new in zip(a[i1:i2], b[j1:j2]):
            if new.replace(", bias=False", "", 1) != old and new.replace("bias=False, ", "", 1) != old:
                return False
    return True


def one_model(name: str, work: Path, args) -> dict:
    """Lint the installed model; copy, fix and lint again when GL404 flags it."""
    shape = ("--input-shape", f"3,{args.size},{args.size}")
    folder = work / re.sub(r"\W", "_", name)
    folder.mkdir()
    imports, function, arguments = installed_builder(name)
    (folder / "installed.py").write_text(INSTALLED_BUILDER.format(imports=imports, call=f"{function}({arguments})"))
    layers = flagged(gradlint(folder, "installed.py:build", *shape, timeout=args.timeout))
    row = {"model": name, "installed": len(layers)}
    if not layers:
        return {**row, "note": "no GL404: nothing to fix"}
    copies = {}
    for x in layers:
        site = x.get("library")
        if site is None:
            return {**row, "note": f"{x['name']} has no library site to copy"}
        if site.rsplit(":", 1)[0] not in copies:
            copies[site.rsplit(":", 1)[0]] = copy_package_file(site, folder)
    module = next((m for path, m in copies.values() if re.search(rf"^def {function}\(", path.read_text(), re.MULTILINE)), None)
    if module is None:
        return {**row, "note": f"{function}() is not in the copied files ({', '.join(copies)})"}
    (folder / "build.py").write_text(COPY_BUILDER.format(module=module, function=function, arguments=arguments))
    originals = {path: path.read_text(encoding="utf-8") for path, _ in copies.values()}
    before = flagged(gradlint(folder, "build.py:build", *shape, timeout=args.timeout))
    fixed = gradlint(folder, "build.py:build", *shape, "--fix", timeout=args.timeout)
    after = flagged(gradlint(folder, "build.py:build", *shape, timeout=args.timeout))
    changed = [p for p, text in originals.items() if p.read_text(encoding="utf-8") != text]
    outcome = "; ".join(f"{f['code']} {'fixed' if f['applied'] else 'not fixed: ' + f['reason']}"
                        for f in fixed["fixes"] if f["code"] == "GL404")
    identical = all(only_bias_edits(originals[p], p.read_text(encoding="utf-8")) for p in changed)
    edited_lines = sum(1 for p in changed for line in difflib.ndiff(originals[p].splitlines(),
                                                                   p.read_text().splitlines()) if line[:1] == "+")
    if args.with_plain and function.startswith("vgg"):
        row["with_plain"] = with_plain(folder, function, arguments, shape, originals, args.timeout)
    return {**row, "before": len(before), "after": len(after), "files": [f"{Path(k).name} (copy)" for k in copies
                                                                          if copies[k][0] in changed],
            "lines": edited_lines, "identical": identical, "outcome": outcome}


def with_plain(folder: Path, function: str, arguments: str, shape, originals: dict, timeout: float) -> str:
    """Restore the copy, lint ``vggN_bn`` and the plain ``vggN`` together with --fix: what it said, and
    whether the copy was left as it was."""
    for path, text in originals.items():
        path.write_text(text, encoding="utf-8")
    plain = function.removesuffix("_bn")
    text = (folder / "build.py").read_text().replace(f"import {function}", f"import {function}, {plain}")
    (folder / "build.py").write_text(text + f"\n\ndef build_plain():\n    return {plain}({arguments})\n")
    fixed = gradlint(folder, "build.py", *shape, "--fix", timeout=timeout)
    same = all(path.read_text(encoding="utf-8") == text for path, text in originals.items())
    said = "; ".join(f['reason'] or 'fixed' for f in fixed["fixes"] if f["code"] == "GL404")
    return f"with {plain} in the run: {said} (copy {'unchanged' if same else 'CHANGED'})"


def main(argv=None) -> None:
    args = parse_args(argv)
    names = [m.strip() for m in args.models.split(",")] if args.models else list(ZOO_BN)
    names += list(EXTRA_BN) if args.all_vgg else []
    print(f"gradlint --fix on copies of the zoo's BatchNorm models ({args.size}x{args.size} inputs)\n")
    print("| model | GL404 (installed) | before | after | files changed | lines edited | identical apart from "
          "the edit | --fix said |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="gradlint-fix-zoo-") as tmp:
        for name in names:
            try:
                row = one_model(name, Path(tmp), args)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                row = {"model": name, "note": f"failed: {str(exc).splitlines()[0]}"}
            if "before" not in row:
                print(f"| {name} | {row.get('installed', '-')} | {row['note']} | | | | | |", flush=True)
                continue
            print(f"| {name} | {row['installed']} | {row['before']} | {row['after']} | "
                  f"{', '.join(row['files']) or '-'} | {row['lines']} | {'yes' if row['identical'] else 'NO'} | "
                  f"{row['outcome']} |", flush=True)
            if "with_plain" in row:
                print(f"|  | {row['with_plain']} | | | | | | |", flush=True)


if __name__ == "__main__":
    main()
