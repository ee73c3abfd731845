"""The paper's table, measured by gradlint: 50-layer width-100 MLPs and ResNets (Philipp et al., section 5).

    python benchmarks/paper_table.py [--batch-size 256] [--seed 0] [--plot FILE.png|svg] [--stability]

Prints a Markdown table: GSC at the input side, explosion rate r and its R^2, minimum sign diversity,
minimum pre-activation std, effective depth (mean and 5th-95th percentile), and gradlint's verdict
with the rules that fired.  ``--stability`` adds the spread of the input-side GSC over 5 probe seeds
at the default batch size (64) and at 256, model fixed: the coefficient of variation and the largest
deviation from the median.  ``--plot`` draws the Fig. 1 panels of every row.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import gradlint
from gradlint import paper
from gradlint.init import looks_linear_
from gradlint.render import verdict

RESIDUAL_SCALES = (0.1, 0.2, 0.5, 1.0)   # the paper's batch-ReLU ResNets' branch scales
ROWS = [
    ("ReLU", lambda: paper.mlp("relu")),
    ("tanh", lambda: paper.mlp("tanh")),
    ("SeLU", lambda: paper.mlp("selu")),
    ("batch-ReLU", lambda: paper.mlp("batch-relu")),
    ("batch-tanh", lambda: paper.mlp("batch-tanh")),
    ("layer-norm-tanh", lambda: paper.mlp("layer-tanh")),
    ("layer-norm-ReLU", lambda: paper.mlp("layer-relu")),
    ("linear", lambda: paper.mlp("linear")),
    ("looks-linear ReLU", lambda: looks_linear_(paper.mlp("relu"), generator=torch.Generator().manual_seed(0))),
    *((f"batch-ReLU ResNet, branch x{a:g}", (lambda a=a: paper.resnet(a))) for a in RESIDUAL_SCALES),
]


def build(make) -> torch.nn.Module:
    torch.manual_seed(0)
    return make()


def gaussian(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 100, generator=torch.Generator().manual_seed(seed))


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-2):
        return f"{x:.2e}"
    return f"{x:.{digits}g}"


def stability(make, batch_size: int | None = None, seeds: int = 5) -> tuple[float, float]:
    """Coefficient of variation and largest deviation from the median of the input-side GSC over probe seeds.

    The model is fixed (seed 0); each probe seed draws new inputs and a new cotangent.
    """
    model = build(make)
    values = [gradlint.lint(model, seed=s, batch_size=batch_size).report.summary.gsc_input for s in range(seeds)]
    med = statistics.median(values)
    return statistics.pstdev(values) / statistics.fmean(values), max(abs(v - med) / med for v in values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", help="write the Fig. 1 panels of every row to this .png or .svg")
    ap.add_argument("--stability", action="store_true", help="add the seed-stability columns (5 probes per row)")
    args = ap.parse_args()
    start = time.perf_counter()
    x = gaussian(args.batch_size, args.seed)
    head = ["architecture", "GSC input side", "rate r", "R^2", "min sign div.", "min pre-act std",
            "effective depth (5-95%)", "verdict"]
    if args.stability:
        head += ["seed CV, B=64 (max dev.)", "seed CV, B=256 (max dev.)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    series = []
    for label, make in ROWS:
        result = gradlint.lint(build(make), x, seed=args.seed, target=label)
        s = result.report.summary
        series.append((label, result.report))
        codes = ", ".join(sorted({f.code for f in result.findings if f.severity != "info"}))
        eff = f"{s.effective_depth:.1f} ({s.effective_depth_p5}-{s.effective_depth_p95})"
        cells = [label, fmt(s.gsc_input), f"{s.explosion_rate:.4f}", f"{s.explosion_fit_r2:.3f}",
                 fmt(s.min_sign_diversity), fmt(s.min_preact_std), eff,
                 verdict(result) + (f" ({codes})" if codes else "")]
        if args.stability:
            for batch in (None, 256):
                cv, dev = stability(make, batch)
                cells.append(f"{cv:.1%} ({dev:.1%})")
        print("| " + " | ".join(cells) + " |")
    print(f"\nB = {args.batch_size}, probe seed {args.seed}, model seed 0; {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    if args.plot:
        from gradlint.render.plot import plot

        plot(series, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
