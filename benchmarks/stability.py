"""Verdict stability: does gradlint's verdict on a fixed model change with things that should not matter?

A model's verdict is the worst severity among its findings (error, warning, info), or "clean".  For
one model (built once, ``torch.manual_seed(0)`` before construction, the same weights for every
configuration) this lints it along three axes, each setting with the other two at their defaults:

    seeds       probe seeds 0-4, passed as ``gradlint.lint(..., seed=s)``.  The example inputs stay
                fixed, so this axis measures the probe's own randomness (its cotangents).
    batch       the example inputs rebuilt at each batch size.
    resolution  the example inputs rebuilt at each spatial size (64 and 224 for a CNN); for language
                models the sequence length (32 and 128) instead.  Skipped for models that accept one
                size only (ViT, DeiT, Swin, Mixer at 224) and for the paper's vector-input networks; a
                setting the model cannot run at (the forward itself fails) is "n/a".

A verdict that is not constant along an axis is a flip, a defect.  Each finding code is reduced to its
worst severity per configuration ("-" when absent); a code whose severity is not constant along an
axis "changes".  Printed: one Markdown row per model (the verdicts along each axis, FLIP where they
are not constant, the codes that change), then the flip rates: the fraction of (model, axis) pairs
whose verdict is not constant, overall and per axis, and the same for codes (of (model, axis) pairs
with any code changing, and of (model, axis, code) triples).  A configuration gradlint fails on is
"failed" (its one-line error in the notes); settings that gave no verdict are left out of the
comparison, and an axis with fewer than two verdicts is left out of the rates.  The "s" column is the
child's seconds for the model (construction and every lint).

Defaults and axes (the constants below):
    paper (vectors of width 100)  batch 256 (the paper table's), batch axis 64 and 256
    zoo images                    batch 8 at 224x224, batch axis 16 and 64, resolution 64 and 224
    zoo language models           batch 8 at sequence length 128, batch axis 16 and 64, length 32 and 128
The seed and resolution axes run at batch 8, the probe's own default at 224x224.  On the 2-core CPU
machine the whole zoo run took 770 s, the paper family 35 s.  Inputs come from a generator seeded ``INPUT_SEED``: Gaussian vectors and images,
uniform token ids; a larger batch starts with the smaller batch's samples.  gradlint may cut a batch
to fit memory (on a 23 GB machine it cuts batch 64 to 31-34 for vgg19_bn, densenet121, vit_b_16,
swin_t and mixer); the JSON records the batch it probed and why.

Two families: ``paper`` (the 50-layer width-100 MLPs and ResNets of benchmarks/paper_table.py, whose
``ROWS`` this reuses) and ``zoo`` (benchmarks/zoo.py's ``MODELS``).  Each model runs in its own
subprocess with a timeout (this script re-invokes itself with the hidden ``--child`` option and reads
one JSON line back), so a crash or a hang costs only that model.

    python benchmarks/stability.py --family paper                 # main environment (torch CPU)
    /opt/zoo/bin/python benchmarks/stability.py --family zoo      # torchvision, timm, transformers

Options: ``--models a,b`` (a subset by name), ``--timeout`` (seconds per model), ``--json FILE`` (all
raw results, with every finding of every configuration), ``--axes batch`` (only some axes) and
``--batches 8,16`` (the image and token models' batch axis, 16 and 64 by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from zoo import MODELS as ZOO_MODELS, VOCAB, one_line, run_isolated  # noqa: E402  (zoo imports nothing heavy)

RESULT_MARK = "STABILITY-RESULT "
SEVERITY_ORDER = ("error", "warning", "info")

SEEDS = (0, 1, 2, 3, 4)
DEFAULT_SEED = 0
INPUT_SEED = 1
AXES = ("seeds", "batch", "resolution")


@dataclass(frozen=True)
class Defaults:
    batch: int                  # the default batch size ...
    batches: tuple[int, ...]    # ... and the batch axis
    size: int | None            # the default resolution / sequence length (None: vectors) ...
    sizes: tuple[int, ...]      # ... and its axis (empty: no resolution axis)


DEFAULTS = {
    "vector": Defaults(batch=256, batches=(64, 256), size=None, sizes=()),
    "image": Defaults(batch=8, batches=(16, 64), size=224, sizes=(64, 224)),
    "tokens": Defaults(batch=8, batches=(16, 64), size=128, sizes=(32, 128)),
}
ONE_SIZE_ONLY = {"vit_b_16", "swin_t", "timm/mixer_b16_224", "timm/deit_tiny_patch16_224"}


@dataclass(frozen=True)
class Config:
    seed: int
    batch: int
    size: int | None


# --------------------------------------------------------------------------- the models

def paper_models() -> dict:
    """name -> (builder, input kind) for the paper's networks, from benchmarks/paper_table.py."""
    from paper_table import ROWS

    return {label: (make, "vector") for label, make in ROWS}


def family_models(family: str) -> dict:
    if family == "paper":
        return paper_models()
    if family == "zoo":
        return dict(ZOO_MODELS)
    return paper_models() | dict(ZOO_MODELS)


def settings(name: str, kind: str, axes=AXES, batches=None) -> list[tuple[str, object, Config]]:
    """(axis, value, configuration) for every setting of the chosen axes of one model; ``batches``
    replaces the batch axis of image and token models."""
    d = DEFAULTS[kind]
    batch_axis = tuple(batches) if batches and kind != "vector" else d.batches
    out = []
    if "seeds" in axes:
        out += [("seeds", s, Config(s, d.batch, d.size)) for s in SEEDS]
    if "batch" in axes:
        out += [("batch", b, Config(DEFAULT_SEED, b, d.size)) for b in batch_axis]
    if "resolution" in axes and d.sizes and name not in ONE_SIZE_ONLY:
        out += [("resolution", r, Config(DEFAULT_SEED, d.batch, r)) for r in d.sizes]
    return out


def make_inputs(kind: str, config: Config):
    import torch

    gen = torch.Generator().manual_seed(INPUT_SEED)
    if kind == "vector":
        from paper_table import gaussian

        return gaussian(config.batch, INPUT_SEED)
    if kind == "image":
        return torch.randn(config.batch, 3, config.size, config.size, generator=gen)
    return torch.randint(0, VOCAB, (config.batch, config.size), generator=gen)


# --------------------------------------------------------------------------- the child: one model

class Linter:
    """Lints one model under many configurations; token ids go in as ``{"input_ids": ids}`` unless the
    first attempt showed that only a positional tensor works."""

    def __init__(self, model, kind: str):
        self.model, self.kind = model, kind
        self.as_dict = kind == "tokens"
        self.note = None

    def wrap(self, x):
        return {"input_ids": x} if self.as_dict else x

    def lint(self, config: Config):
        import gradlint

        x = make_inputs(self.kind, config)
        try:
            return gradlint.lint(self.model, example_inputs=self.wrap(x), seed=config.seed)
        except Exception as exc:  # noqa: BLE001
            if not self.as_dict or self.note:
                raise
            self.as_dict, self.note = False, f"dict inputs failed ({one_line(exc)}); ids passed positionally"
        return gradlint.lint(self.model, example_inputs=self.wrap(x), seed=config.seed)

    def runs(self, config: Config) -> bool:
        """Whether the model's own forward runs on this configuration's inputs."""
        import torch

        try:
            with torch.no_grad():
                x = self.wrap(make_inputs(self.kind, config))
                self.model(**x) if isinstance(x, dict) else self.model(x)
            return True
        except Exception:  # noqa: BLE001
            return False


def worst(severities) -> str:
    present = set(severities)
    return next((s for s in SEVERITY_ORDER if s in present), "clean")


def outcome(linter: Linter, config: Config) -> dict:
    """The verdict and each code's worst severity under one configuration; never raises."""
    start = time.perf_counter()
    try:
        result = linter.lint(config)
    except Exception as exc:  # noqa: BLE001
        verdict = "failed" if linter.runs(config) else "n/a"
        return {"verdict": verdict, "error": one_line(exc), "lint_s": time.perf_counter() - start}
    codes: dict[str, list[str]] = {}
    for f in result.findings:
        codes.setdefault(f.code, []).append(f.severity)
    probe = result.report.probe
    return {
        "verdict": worst(f.severity for f in result.findings),
        "codes": {code: worst(sevs) for code, sevs in sorted(codes.items())},
        "batch_probed": probe.batch_size,
        "reduced_why": probe.reduced_why,
        "findings": [{"code": f.code, "severity": f.severity, "layer": f.layer} for f in result.findings],
        "lint_s": time.perf_counter() - start,
    }


def run_child(name: str, axes=AXES, batches=None) -> dict:
    """Build one model once and lint it under every setting of the chosen axes; never raises."""
    import torch

    builder, kind = family_models("all")[name]
    row: dict = {"model": name, "input": kind, "settings": []}
    start = time.perf_counter()
    try:
        torch.manual_seed(0)
        linter = Linter(builder(), kind)
        done: dict[Config, dict] = {}        # a configuration shared by two axes is linted once
        for axis, value, config in settings(name, kind, axes, batches):
            if config not in done:
                done[config] = outcome(linter, config)
            row["settings"].append({"axis": axis, "value": value, **done[config]})
        row["input_note"] = linter.note
    except Exception as exc:  # noqa: BLE001 - the model could not even be built
        row["error"] = one_line(exc)
        row["traceback"] = traceback.format_exc()
    row["total_s"] = time.perf_counter() - start
    return row


# --------------------------------------------------------------------------- the parent: all models

def axis_settings(row: dict, axis: str) -> list[dict]:
    return [s for s in row.get("settings", []) if s["axis"] == axis]


def judged(settings_: list[dict]) -> list[dict]:
    """The settings that produced a verdict (not "n/a", not "failed")."""
    return [s for s in settings_ if "error" not in s]


def verdict_flips(settings_: list[dict]) -> bool | None:
    """None when fewer than two settings produced a verdict (nothing to compare)."""
    ok = judged(settings_)
    return None if len(ok) < 2 else len({s["verdict"] for s in ok}) > 1


def code_changes(settings_: list[dict]) -> dict[str, list[str]] | None:
    """Each code whose worst severity is not constant over the judged settings -> its severities."""
    ok = judged(settings_)
    if len(ok) < 2:
        return None
    codes = sorted({c for s in ok for c in s["codes"]})
    series = {c: [s["codes"].get(c, "-") for s in ok] for c in codes}
    return {c: sevs for c, sevs in series.items() if len(set(sevs)) > 1}


def codes_seen(settings_: list[dict]) -> set[str]:
    return {c for s in judged(settings_) for c in s["codes"]}


def axis_cell(settings_: list[dict]) -> str:
    if not settings_:
        return "-"
    verdicts = " ".join(s["verdict"] for s in settings_)
    flips = verdict_flips(settings_)
    mark = {True: " **FLIP**", False: "", None: " (nothing to compare)"}[flips]
    return f"{settings_[0]['axis']} {'/'.join(str(s['value']) for s in settings_)}: {verdicts}{mark}"


def changes_cell(row: dict) -> str:
    parts = []
    for axis in AXES:
        changed = code_changes(axis_settings(row, axis)) or {}
        parts += [f"{code} on {axis} ({' '.join(sevs)})" for code, sevs in changed.items()]
    return "; ".join(parts) or "none"


def notes_cell(row: dict) -> str:
    notes = [row["input_note"]] if row.get("input_note") else []
    seen = set()
    for s in row.get("settings", []):
        if "error" in s and s["error"] not in seen:
            seen.add(s["error"])
            notes.append(f"{s['axis']} {s['value']} {s['verdict']}: {s['error'][:160]}")
    return "; ".join(notes)


HEADER = ("model", "seeds", "batch", "resolution / seq. length", "codes changing severity", "s", "notes")


def table_row(row: dict) -> str:
    total = f"{row.get('total_s', 0):.0f}"
    if "error" in row:
        cells = [row["model"], "failed", "-", "-", "-", total, row["error"]]
    else:
        cells = [row["model"], *(axis_cell(axis_settings(row, a)) for a in AXES), changes_cell(row),
                 total, notes_cell(row)]
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.0%})" if total else "0/0 (n/a)"


def summary(rows: list[dict]) -> list[str]:
    """The flip rates, overall and per axis: verdicts, (model, axis) pairs with a code changing, and
    (model, axis, code) triples."""
    counts = {a: [0, 0, 0, 0, 0] for a in AXES}   # verdict flips, pairs, pairs with a code change, code changes, codes
    for row in rows:
        for axis in AXES:
            settings_ = axis_settings(row, axis)
            flips = verdict_flips(settings_)
            if flips is None:
                continue
            changed = code_changes(settings_)
            c = counts[axis]
            c[0] += flips
            c[1] += 1
            c[2] += bool(changed)
            c[3] += len(changed)
            c[4] += len(codes_seen(settings_))
    total = [sum(c[i] for c in counts.values()) for i in range(5)]
    lines = ["| rate | overall | " + " | ".join(AXES) + " |", "|---|---|" + "---|" * len(AXES)]
    for label, (num, den) in (("verdict flips (model, axis)", (0, 1)),
                              ("any code changes severity (model, axis)", (2, 1)),
                              ("code changes severity (model, axis, code)", (3, 4))):
        cells = [rate(total[num], total[den]), *(rate(counts[a][num], counts[a][den]) for a in AXES)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=("paper", "zoo", "all"), default="all")
    parser.add_argument("--models", help="comma-separated subset of the family's model names")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per model (default 900)")
    parser.add_argument("--json", type=Path, help="also write every raw result to this file")
    parser.add_argument("--axes", default=",".join(AXES),
                        help="comma-separated axes to run (default: seeds,batch,resolution)")
    parser.add_argument("--batches", help="comma-separated batch axis for image and token models "
                                          "(default 16,64)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def split_names(models: str, known) -> list[str]:
    """Comma-separated names; a paper name with a comma in it ("batch-ReLU ResNet, branch x0.1") is
    put back together."""
    names, pending = [], ""
    for piece in models.split(","):
        pending = f"{pending},{piece}" if pending else piece
        if pending.strip() in known:
            names.append(pending.strip())
            pending = ""
    if pending.strip():
        names.append(pending.strip())
    return names


def selected(family: str, models: str | None) -> list[str]:
    known = family_models(family)
    names = split_names(models, known) if models else list(known)
    unknown = [m for m in names if m not in known]
    if unknown:
        sys.exit(f"unknown model(s): {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def main(argv=None) -> None:
    args = parse_args(argv)
    axes = tuple(a.strip() for a in args.axes.split(","))
    if set(axes) - set(AXES):
        sys.exit(f"unknown axis in {args.axes!r}; choose from {', '.join(AXES)}")
    batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else None
    if args.child:
        print(RESULT_MARK + json.dumps(run_child(args.child, axes, batches)), flush=True)
        return
    extra = ["--axes", args.axes] + (["--batches", args.batches] if args.batches else [])
    names = selected(args.family, args.models)
    start = time.perf_counter()
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER), flush=True)
    rows = []
    for name in names:
        rows.append(run_isolated(name, args.timeout, Path(__file__).resolve(), extra, RESULT_MARK))
        print(table_row(rows[-1]), flush=True)
    print()
    print("\n".join(summary(rows)))
    print(f"\n{len(rows)} models, {time.perf_counter() - start:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
