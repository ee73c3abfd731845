"""gradlint on a zoo of stock architectures, each at its library's default initialisation.

For every model in ``MODELS`` this builds the architecture from code (no pretrained weights, no
network), lints it with ``gradlint.lint`` at default options, and prints one row of a Markdown table:
the capture tier (fx or hooks), the verdict (worst severity, or clean), the finding codes by severity,
the gradient scale coefficient (GSC) at the input and its maximum, the explosion rate with the R^2 of
its fit, effective / compositional depth, parameter coverage (where the report has it), and seconds
spent (lint alone, and in total with construction).  A model whose lint raised gets its error in one
line instead.

Image models get a (8, 3, 224, 224) Gaussian batch; language models get (8, 64) token ids, passed as
``{"input_ids": ids}`` and, if gradlint rejects that, positionally as a tensor (the row says so).
Torch is seeded with 0 before each model is constructed, and the inputs come from their own
generator seeded 0, so a run is reproducible.

Each model runs in its own subprocess with a timeout (this script re-invokes itself with the hidden
``--child`` option and reads one JSON line back), so a crash or a hang costs only that model.

torchvision and timm do not work beside the main environment's torch, so this needs the separate
environment at /opt/zoo (torch, torchvision, timm, transformers) with gradlint installed into it
without touching its torch:

    /opt/zoo/bin/pip install --no-deps -e /work/main
    /opt/zoo/bin/pip install click rich

Usage:

    /opt/zoo/bin/python benchmarks/zoo.py [--models resnet18,gpt2] [--timeout 600] [--json rows.json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT_MARK = "ZOO-RESULT "          # prefix of the child's one JSON line on stdout
SEVERITY_ORDER = ("error", "warning", "info")

IMAGE_SHAPE = (8, 3, 224, 224)
TOKEN_SHAPE = (8, 64)

# Small language-model configs: 4 layers, width 128, 4 heads, vocabulary 1000, 128 positions.
LAYERS, WIDTH, HEADS, VOCAB, POSITIONS = 4, 128, 4, 1000, 128


# --------------------------------------------------------------------------- model builders
# Imports live inside the builders so a child process loads only the library its model needs.

def torchvision_model(name: str, **kwargs):
    def build():
        import torchvision.models as tvm

        return getattr(tvm, name)(weights=None, **kwargs)
    return build


def timm_model(name: str):
    def build():
        import timm

        return timm.create_model(name, pretrained=False)
    return build


def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(n_layer=LAYERS, n_embd=WIDTH, n_head=HEADS, vocab_size=VOCAB,
                                      n_positions=POSITIONS, use_cache=False))


def bert():
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(num_hidden_layers=LAYERS, hidden_size=WIDTH, num_attention_heads=HEADS,
                                intermediate_size=4 * WIDTH, vocab_size=VOCAB,
                                max_position_embeddings=POSITIONS, use_cache=False))


def bert_base():
    """BERT-base at its default configuration: 110M parameters, the scale check."""
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig())


def llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(num_hidden_layers=LAYERS, hidden_size=WIDTH, num_attention_heads=HEADS,
                                        num_key_value_heads=HEADS, intermediate_size=4 * WIDTH,
                                        vocab_size=VOCAB, max_position_embeddings=POSITIONS,
                                        use_cache=False))


# name -> (builder, input kind)
MODELS = {
    "resnet18": (torchvision_model("resnet18"), "image"),
    "resnet50": (torchvision_model("resnet50"), "image"),
    "resnet50_zero_init": (torchvision_model("resnet50", zero_init_residual=True), "image"),
    "vgg19": (torchvision_model("vgg19"), "image"),
    "vgg19_bn": (torchvision_model("vgg19_bn"), "image"),
    "densenet121": (torchvision_model("densenet121"), "image"),
    "mobilenet_v3_small": (torchvision_model("mobilenet_v3_small"), "image"),
    "efficientnet_b0": (torchvision_model("efficientnet_b0"), "image"),
    "vit_b_16": (torchvision_model("vit_b_16"), "image"),
    "convnext_tiny": (torchvision_model("convnext_tiny"), "image"),
    "swin_t": (torchvision_model("swin_t"), "image"),
    "timm/mixer_b16_224": (timm_model("mixer_b16_224"), "image"),
    "timm/regnety_008": (timm_model("regnety_008"), "image"),
    "timm/nfnet_l0": (timm_model("nfnet_l0"), "image"),
    "timm/deit_tiny_patch16_224": (timm_model("deit_tiny_patch16_224"), "image"),
    "hf/gpt2": (gpt2, "tokens"),
    "hf/bert": (bert, "tokens"),
    "hf/llama": (llama, "tokens"),
    "hf/bert-base": (bert_base, "tokens"),
}


# --------------------------------------------------------------------------- the child: one model

def make_inputs(kind: str):
    import torch

    gen = torch.Generator().manual_seed(0)
    if kind == "image":
        return torch.randn(IMAGE_SHAPE, generator=gen)
    return torch.randint(0, VOCAB, TOKEN_SHAPE, generator=gen)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:400]


def lint_model(model, kind: str, x) -> tuple[object, str | None]:
    """Lint with default options; token ids go in as a dict, else positionally.  Returns (result, note)."""
    import gradlint

    if kind != "tokens":
        return gradlint.lint(model, example_inputs=x), None
    try:
        return gradlint.lint(model, example_inputs={"input_ids": x}), None
    except Exception as exc:  # noqa: BLE001 - any refusal of the dict means: try the tensor
        note = f"dict inputs failed ({one_line(exc)}); ids passed positionally"
    return gradlint.lint(model, example_inputs=x), note


def finding_rows(findings) -> list[dict]:
    return [{"code": f.code, "severity": f.severity, "layer": f.layer, "message": f.message} for f in findings]


def plain(x):
    """A JSON-safe value: non-finite floats become None, anything unusual becomes its string."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    return str(x)


def report_row(result) -> dict:
    report, summary = result.report, result.report.summary
    return {
        "tier": report.trace,
        "trace_note": report.trace_note,
        "gsc_input": plain(summary.gsc_input),
        "gsc_max": plain(summary.gsc_max),
        "explosion_rate": plain(summary.explosion_rate),
        "explosion_fit_r2": plain(summary.explosion_fit_r2),
        "effective_depth": plain(summary.effective_depth),
        "compositional_depth": plain(summary.compositional_depth),
        "parameter_coverage": plain(getattr(summary, "parameter_coverage", None)),
        "findings": finding_rows(result.findings),
    }


def run_child(name: str) -> dict:
    """Build, lint and describe one model; never raises."""
    import torch

    builder, kind = MODELS[name]
    row: dict = {"model": name, "input": kind}
    start = time.perf_counter()
    try:
        torch.manual_seed(0)
        model = builder()
        x = make_inputs(kind)
        lint_start = time.perf_counter()   # lint seconds include a refused dict attempt, if any
        result, note = lint_model(model, kind, x)
        row["lint_s"] = time.perf_counter() - lint_start
        row["input_note"] = note
        row.update(report_row(result))
    except Exception as exc:  # noqa: BLE001 - the failure is the finding
        row["error"] = one_line(exc)
        row["traceback"] = traceback.format_exc()
    row["total_s"] = time.perf_counter() - start
    return row


# --------------------------------------------------------------------------- the parent: all models

def run_isolated(name: str, timeout: float, script: Path | None = None, extra=(), mark: str = RESULT_MARK) -> dict:
    """Run ``script --child name *extra`` (this file by default) in a fresh interpreter and read back the
    JSON line after ``mark``; a crash, a hang or garbled output becomes the row's error."""
    cmd = [sys.executable, str(script or Path(__file__).resolve()), "--child", name, *extra]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"model": name, "error": f"timed out after {timeout:g} s", "total_s": time.perf_counter() - start}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(mark)]
    if lines:
        return json.loads(lines[-1][len(mark):])
    tail = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    why = tail[-1].strip() if tail else "no output"
    return {"model": name, "error": f"child exited {proc.returncode} without a result: {why}"[:400],
            "total_s": time.perf_counter() - start}


def fmt(x, spec: str = ".3g") -> str:
    return "n/a" if x is None else format(x, spec) if isinstance(x, (int, float)) else str(x)


def verdict(findings: list[dict]) -> str:
    severities = {f["severity"] for f in findings}
    return next((s for s in SEVERITY_ORDER if s in severities), "clean")


def codes_by_severity(findings: list[dict]) -> str:
    parts = []
    for sev in SEVERITY_ORDER:
        codes = sorted({f["code"] for f in findings if f["severity"] == sev})
        if codes:
            parts.append(f"{sev}: {', '.join(codes)}")
    return "; ".join(parts) or "-"


HEADER = ("model", "tier", "verdict", "codes", "GSC input", "GSC max", "rate (R²)",
          "eff / comp depth", "coverage", "s lint / total", "notes")


def table_row(row: dict) -> str:
    total = fmt(row.get("total_s"), ".1f")
    if "error" in row:
        cells = [row["model"], "-", "failed", "-", "-", "-", "-", "-", "-", f"- / {total}", row["error"]]
    else:
        findings = row["findings"]
        rate = f"{fmt(row['explosion_rate'], '.3f')} ({fmt(row['explosion_fit_r2'], '.2f')})"
        depth = f"{fmt(row['effective_depth'], '.1f')} / {fmt(row['compositional_depth'], 'd')}"
        cells = [row["model"], row["tier"], verdict(findings), codes_by_severity(findings),
                 fmt(row["gsc_input"]), fmt(row["gsc_max"]), rate, depth, fmt(row["parameter_coverage"], ".2f"),
                 f"{fmt(row['lint_s'], '.1f')} / {total}", row.get("input_note") or ""]
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help=f"comma-separated subset of: {', '.join(MODELS)}")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per model (default 600)")
    parser.add_argument("--json", type=Path, help="also write every row, with full findings, to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def selected(models: str | None) -> list[str]:
    names = [m.strip() for m in models.split(",") if m.strip()] if models else list(MODELS)
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s): {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    return names


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        print(RESULT_MARK + json.dumps(run_child(args.child)), flush=True)
        return
    names = selected(args.models)
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER), flush=True)
    rows = []
    for name in names:
        row = run_isolated(name, args.timeout)
        rows.append(row)
        print(table_row(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
