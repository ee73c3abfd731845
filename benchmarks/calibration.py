"""Threshold calibration: healthy reference architectures against the paper's unhealthy MLPs.

    python benchmarks/calibration.py [--seed 0] [--threads 2] [--diagnostics]

Every model is built after ``torch.manual_seed(0)`` and probed by ``gradlint.lint`` with seed 0 at its
default batch: the shapes its reference builder names (token ids 16 x 32; images 8 x 3 x 32 x 32;
vectors B = 64, gradlint's own default for the MLPs, whose inputs it infers).  Prints Markdown:

1. gradient and structure: trace, compositional / effective depth, GSC at the input side and its
   maximum, explosion rate and R^2, residual dilution and branch share, Hanin's sum of 1/width;
2. collapse: minimum sign diversity (ReLU family, and any family), minimum relative spread, minimum
   nonlinearity score, maximum dead and saturated fractions, mean orthogonality defect;
3. static checks on the model itself: sibling depth-bearing layers with identical weights, and biased
   layers feeding a normalisation directly; then the findings gradlint emits;
4. each metric's range over the healthy references and over the unhealthy models;
5. nn.TransformerEncoder (norm_first): fx or hooks, and whether its layers' weights are identical.

``--diagnostics`` adds variants that separate a metric problem from a model problem (no zero-init
residual, gradlint's default image batch 64, a non-causal Transformer, ReLU instead of GELU, deeper
VGGs) and a sweep of VGG-BN depth and model seed for GL101.  Timings are of one lint after a warm-up,
on however many cores ``--threads`` allows; the machine's other load shows in them.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

import gradlint
from gradlint import paper
from gradlint.rules.gl402_depth_against_width import hanin_beta

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from reference_models import (  # noqa: E402
    ResidualMLP, gaussian, mlp, pre_norm_transformer, resnet18_like, tokens, vgg_like_bn)

HEALTHY, UNHEALTHY, EXTRA = "healthy", "unhealthy", "diagnostic"


@dataclass
class Case:
    name: str
    group: str
    make: object
    inputs: object = None          # a function of the model giving the probe inputs; None: gradlint infers them


def image(batch: int):
    return lambda model: gaussian(batch, 3, 32, 32)


CASES = [
    Case("pre-norm transformer", HEALTHY, pre_norm_transformer, lambda m: tokens(16, 32, 1000)),
    Case("resnet18-like, zero-init residual", HEALTHY, resnet18_like, image(8)),
    Case("VGG-11-like BN", HEALTHY, vgg_like_bn, image(8)),
    Case("residual MLP (x0.2)", HEALTHY, ResidualMLP),
    *(Case(f"paper {name}", UNHEALTHY, (lambda name=name: paper.mlp(name))) for name in paper.PLAIN),
    Case("default-init ReLU mlp(20, 100)", UNHEALTHY, lambda: mlp(20, 100)),
    Case("default-init tanh mlp(20, 100)", UNHEALTHY, lambda: mlp(20, 100, nn.Tanh)),
]


def _relu_transformer():
    model = pre_norm_transformer()
    for block in model.blocks:
        block.mlp[1] = nn.ReLU()
    return model


DIAGNOSTICS = [
    Case("resnet18-like, no zero-init", EXTRA, lambda: resnet18_like(zero_init_residual=False), image(8)),
    Case("resnet18-like, zero-init, B=64", EXTRA, resnet18_like, image(64)),
    Case("VGG-11-like BN, B=64", EXTRA, vgg_like_bn, image(64)),
    Case("VGG-11-like BN, B=32", EXTRA, vgg_like_bn, image(32)),
    Case("pre-norm transformer, B=64", EXTRA, pre_norm_transformer, lambda m: tokens(64, 32, 1000)),
    Case("pre-norm transformer, non-causal", EXTRA, lambda: pre_norm_transformer(causal=False),
         lambda m: tokens(16, 32, 1000)),
    Case("pre-norm transformer, ReLU MLP", EXTRA, _relu_transformer, lambda m: tokens(16, 32, 1000)),
    Case("residual MLP (x1)", EXTRA, lambda: ResidualMLP(scale=1.0)),
    Case("VGG-16-like BN", EXTRA, lambda: vgg_like_bn(depth=16), image(8)),
    Case("VGG-19-like BN", EXTRA, lambda: vgg_like_bn(depth=19), image(8)),
]


# --------------------------------------------------------------------------- checks on the model itself

def identical_weights(report) -> list[tuple[str, str]]:
    """Pairs of depth-bearing layers whose weights are equal value for value (the probe's copy facts)."""
    return [(x.copy_of, x.name) for x in report.layers if x.copy_of]


def bias_into_norm(report) -> list[tuple[str, str]]:
    """(layer, norm) for every layer whose bias the batch-type norm right after it cancels."""
    return [(x.name, x.bias_cancelled_by) for x in report.layers if x.bias_cancelled_by]


# --------------------------------------------------------------------------- measuring


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-2):
        return f"{x:.2e}"
    return f"{x:.{digits}g}"


def _arg(layers, stat, pick):
    vals = [x for x in layers if getattr(x, stat) is not None]
    if not vals:
        return None, None
    best = pick(vals, key=lambda x: getattr(x, stat))
    return getattr(best, stat), best


def measure(case: Case, seed: int) -> dict:
    torch.manual_seed(seed)
    model = case.make()
    given = case.inputs(model) if case.inputs is not None else None
    start = time.perf_counter()
    result = gradlint.lint(model, given, seed=seed)
    elapsed = time.perf_counter() - start
    rep = result.report
    s = rep.summary
    acts = [x for x in rep.layers if x.kind == "nonlinearity"]
    relu = [x for x in acts if x.family == "relu"]
    sd_relu, sd_relu_at = _arg(relu, "sign_diversity", min)
    sd_all, sd_all_at = _arg(acts, "sign_diversity", min)
    nl, nl_at = _arg(acts, "nonlinearity", min)
    dead, dead_at = _arg(acts, "dead_fraction", max)
    sat, sat_at = _arg(acts, "saturated_fraction", max)
    spread, spread_at = _arg(acts, "relative_spread", min)
    dil = [b.dilution for b in rep.residual_blocks if b.dilution is not None]
    share = [b.branch_share for b in rep.residual_blocks if b.branch_share is not None]
    beta = hanin_beta(rep)  # exactly what GL402 judges: hidden Linear layers of the longest plain run
    hanin = beta[0] if beta else None
    bias_norm = bias_into_norm(rep)
    return {
        "name": case.name, "group": case.group, "batch": rep.probe.batch_size, "time": elapsed,
        "trace": rep.trace, "trace_note": rep.trace_note,
        "depth": s.compositional_depth, "eff": s.effective_depth, "p5": s.effective_depth_p5,
        "p95": s.effective_depth_p95, "gsc_input": s.gsc_input, "gsc_max": s.gsc_max,
        "rate": s.explosion_rate, "r2": s.explosion_fit_r2,
        "sd_relu": sd_relu, "sd_relu_at": sd_relu_at, "sd_all": sd_all, "sd_all_at": sd_all_at,
        "spread": spread, "spread_at": spread_at, "nl": nl, "nl_at": nl_at,
        "dead": dead, "dead_at": dead_at, "sat": sat, "sat_at": sat_at,
        "defect": s.mean_orthogonality_defect,
        "blocks": len(rep.residual_blocks), "k_min": min(dil, default=None), "p_max": max(share, default=None),
        "hanin": hanin, "identical": identical_weights(rep), "bias_norm": bias_norm,
        "findings": [f"{f.code}:{f.severity}" for f in result.findings], "result": result,
    }


def where(layer) -> str:
    return f" @{layer.name}" if layer is not None else ""


def sd_cell(value, layer) -> str:
    if value is None:
        return "n/a"
    floor = ""
    if layer is not None and layer.samples:
        floor = f", n={layer.samples}"
    return f"{fmt(value)}{where(layer)}{floor}"


def table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def print_tables(ms: list[dict]) -> None:
    print("### Gradient and structure\n")
    print(table(
        ["model", "group", "B", "lint s", "trace", "depth comp / eff (5-95%)", "GSC input", "GSC max",
         "rate r (R^2)", "res. blocks", "min dilution k", "max branch share p", "GL402 beta (sum 1/width)"],
        [[m["name"], m["group"], str(m["batch"]), f"{m['time']:.2f}", m["trace"],
          f"{m['depth']} / {fmt(m['eff'])} ({m['p5']}-{m['p95']})", fmt(m["gsc_input"]), fmt(m["gsc_max"]),
          f"{m['rate']:.4f} ({fmt(m['r2'])})" if m["rate"] is not None else "n/a", str(m["blocks"]),
          fmt(m["k_min"]), fmt(m["p_max"]), fmt(m["hanin"])] for m in ms]))
    print("\n### Collapse and orthogonality (n = samples per unit at that layer)\n")
    print(table(
        ["model", "min sign div. (ReLU family)", "min sign div. (any)", "min rel. spread", "min nonlinearity",
         "max dead", "max saturated", "mean orth. defect"],
        [[m["name"], sd_cell(m["sd_relu"], m["sd_relu_at"]), sd_cell(m["sd_all"], m["sd_all_at"]),
          f"{fmt(m['spread'])}{where(m['spread_at'])}",
          f"{fmt(m['nl'])}{where(m['nl_at'])}" + (f" ({m['nl_at'].op})" if m["nl_at"] is not None else ""),
          f"{fmt(m['dead'])}{where(m['dead_at']) if m['dead'] else ''}",
          f"{fmt(m['sat'])}{where(m['sat_at']) if m['sat'] else ''}", fmt(m["defect"])] for m in ms]))
    print("\n### Static checks and findings\n")
    rows = []
    for m in ms:
        ident = f"yes, {len(m['identical'])} pairs (e.g. {m['identical'][0][0]} = {m['identical'][0][1]})" \
            if m["identical"] else "no"
        bn = (f"yes, {len(m['bias_norm'])} (e.g. {m['bias_norm'][0][0]} -> {m['bias_norm'][0][1]})"
              if m["bias_norm"] else "no")
        rows.append([m["name"], ident, bn, ", ".join(m["findings"]) or "clean"])
    print(table(["model", "identical weights (copies)", "bias cancelled by a norm", "findings"], rows))


RANGE_METRICS = [
    ("compositional depth", "depth"), ("effective depth", "eff"), ("GSC input", "gsc_input"),
    ("GSC max", "gsc_max"), ("explosion rate r", "rate"), ("R^2 of the rate fit", "r2"),
    ("min sign diversity (ReLU family)", "sd_relu"), ("min sign diversity (any family)", "sd_all"),
    ("min relative spread", "spread"), ("min nonlinearity", "nl"), ("max dead fraction", "dead"),
    ("max saturated fraction", "sat"), ("mean orthogonality defect", "defect"),
    ("min dilution k", "k_min"), ("max branch share p", "p_max"), ("GL402 beta (sum 1/width)", "hanin"),
]


def print_ranges(ms: list[dict]) -> None:
    print("\n### Ranges: healthy references against unhealthy models\n")
    rows = []
    for label, key in RANGE_METRICS:
        cells = [label]
        for group in (HEALTHY, UNHEALTHY):
            vals = [(m[key], m["name"]) for m in ms if m["group"] == group and m[key] is not None]
            if not vals:
                cells += ["n/a", "n/a"]
                continue
            lo, hi = min(vals), max(vals)
            cells += [f"{fmt(lo[0])} ({lo[1]})", f"{fmt(hi[0])} ({hi[1]})"]
        rows.append(cells)
    print(table(["metric", "healthy min", "healthy max", "unhealthy min", "unhealthy max"], rows))


def print_findings(ms: list[dict]) -> None:
    print("\n### Findings, per model\n")
    for m in ms:
        fs = m["result"].findings
        print(f"- **{m['name']}** ({m['group']}): " + ("clean" if not fs else ""))
        for f in fs:
            print(f"  - {f.code} {f.severity}: {f.message}")


def transformer_encoder(seed: int) -> None:
    print("\n### nn.TransformerEncoder (d_model 64, 4 heads, norm_first, 4 layers), float input (16, 32, 64)\n")
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, batch_first=True, norm_first=True)
        model = nn.TransformerEncoder(layer, num_layers=4)
        result = gradlint.lint(model, gaussian(16, 32, 64), seed=seed)
    rep = result.report
    pairs = identical_weights(rep)
    n_depth = sum(1 for x in rep.layers if x.kind == "layer")
    print(f"- trace: {rep.trace}; trace_note: {rep.trace_note}")
    print(f"- compositional depth {rep.summary.compositional_depth}, residual blocks seen "
          f"{len(rep.residual_blocks)}, GSC max {fmt(rep.summary.gsc_max)}, GSC input "
          f"{fmt(rep.summary.gsc_input)}, rate {fmt(rep.summary.explosion_rate)} (R^2 {fmt(rep.summary.explosion_fit_r2)})")
    print(f"- identical sibling weights: {len(pairs)} equal pairs among the weights of {n_depth} depth-bearing "
          f"modules; e.g. {', '.join(f'{a} = {b}' for a, b in pairs[:3])}")
    same_as_template = all(torch.equal(p, q) for lyr in model.layers
                           for p, q in zip(lyr.parameters(), layer.parameters()))
    print(f"- every layer equals the template layer passed in (deep copies): {same_as_template}")
    print(f"- findings: {', '.join(f'{f.code}:{f.severity}' for f in result.findings) or 'clean'}")
    for f in result.findings:
        print(f"  - {f.code} {f.severity}: {f.message}")


def vgg_sweep() -> None:
    """GL101 on VGG-BN across depth and model seed: the rate is depth-independent, R^2 and GSC grow."""
    print("\n### VGG-BN (B = 8): GL101 inputs across depth and model seed\n")
    rows = []
    for depth in (11, 13, 16, 19):
        for seed in range(3):
            torch.manual_seed(seed)
            model = vgg_like_bn(depth=depth)
            result = gradlint.lint(model, gaussian(8, 3, 32, 32, seed=seed), seed=seed)
            s = result.report.summary
            cls = result.report.layer("classifier.1")
            gl101 = next((f.severity for f in result.findings if f.code == "GL101"), "none")
            rows.append([f"VGG-{depth}", str(seed), fmt(s.gsc_max), f"{s.explosion_rate:.3f}",
                         f"{s.explosion_fit_r2:.3f}", str(s.spine_points), gl101,
                         f"{fmt(cls.sign_diversity)} / {fmt(cls.dead_fraction)}"])
    print(table(["model", "seed", "GSC max", "rate r", "R^2", "spine points", "GL101",
                 "classifier ReLU sign div. / dead (n = 8)"], rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the time budget assumes 2)")
    ap.add_argument("--diagnostics", action="store_true", help="add the diagnostic variants")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = CASES + (DIAGNOSTICS if args.diagnostics else [])
    # The first lint in a process pays torch's one-time warm-up (about 1-2 s): keep it out of the timings.
    for case in (CASES[0], CASES[1]):
        measure(case, args.seed)
    ms = [measure(c, args.seed) for c in cases]
    print_tables(ms)
    print_ranges([m for m in ms if m["group"] != EXTRA])
    print_findings(ms)
    transformer_encoder(args.seed)
    if args.diagnostics:
        vgg_sweep()


if __name__ == "__main__":
    main()
