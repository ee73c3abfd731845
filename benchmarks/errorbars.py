"""Do the error bars cover what a 10x larger probe measures?

For each model: lint it once as a user would (its usual probe batch B, seed 0), then again with a batch of
10 B drawn from another seed (other samples, other cotangents), and check for every headline figure
(GSC at the input and its maximum, explosion rate, effective depth, minimum sign diversity and relative
spread) whether the larger probe's value lies within the first probe's error bar; and the same against
the mean of ten more probes of the same batch size B (seeds 1-10).  The two differ where the figure
itself depends on the batch size (a net with BatchNorm in training mode couples its samples: its GSC at
batch 10 B is not its GSC at batch B).  Printed: one row per model (value +/- error bar, the mean of ten
probes, the 10x-batch value; + covered, x not, for each in that order), then the coverage per figure and
overall.  The error bars are about 95% intervals (docs/metrics.md), so about 95% coverage is the target.

Models: the paper's 50-layer width-100 MLPs (eight nonlinearity/normalisation pairs) and ResNets
(branch scales 0.1, 0.2, 0.5), a BN-ReLU CNN, a pre-norm Transformer; with ``--zoo`` (in the /opt/zoo
environment, see benchmarks/zoo.py) also stock torchvision, timm and Hugging Face models at zoo.py's
input shapes.  One thread.

    OMP_NUM_THREADS=1 python benchmarks/errorbars.py [--batch 256]
    OMP_NUM_THREADS=1 PYTHONPATH=. /opt/zoo/bin/python benchmarks/errorbars.py --zoo --only-zoo
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FIGURES = ("gsc_input", "gsc_max", "explosion_rate", "effective_depth", "min_sign_diversity",
           "min_relative_spread")
ZOO = ("resnet18", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "timm/deit_tiny_patch16_224",
       "timm/regnety_008", "hf/gpt2", "hf/bert", "hf/llama")


def paper_models():
    """(name, builder, one sample's shape or ("tokens", vocab, length), probe batch)."""
    from gradlint import paper

    models = [(f"MLP {n}", lambda n=n: paper.mlp(n, 50, 100, 10), (100,), 64) for n in
              ("relu", "tanh", "selu", "linear", "layer-relu", "layer-tanh", "batch-relu", "batch-tanh")]
    models += [(f"ResNet a={a}", lambda a=a: paper.ResNet(a, 50, 100, 10), (100,), 64) for a in (0.1, 0.2, 0.5)]
    sys.path.insert(0, str(Path(__file__).parent))
    import trainability

    models += [("CNN plain 10 (BN-ReLU)", lambda: trainability.cnn(10, False), (1, 8, 8), 64),
               ("CNN residual 31", lambda: trainability.cnn(31, True), (1, 8, 8), 64),
               ("Transformer pre-norm", lambda: trainability.transformer(True, 8), ("tokens", 8, 12), 32)]
    return models


def zoo_models():
    sys.path.insert(0, str(Path(__file__).parent))
    import zoo

    out = []
    for name in ZOO:
        build, kind = zoo.MODELS[name]
        shape = zoo.IMAGE_SHAPE[1:] if kind == "image" else ("tokens", zoo.VOCAB, zoo.TOKEN_SHAPE[1])
        batch = zoo.IMAGE_SHAPE[0] if kind == "image" else zoo.TOKEN_SHAPE[0]
        out.append((name, build, shape, batch))
    return out


def inputs(shape, batch: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    if shape[0] == "tokens":
        return torch.randint(0, shape[1], (batch, shape[2]), generator=g)
    return torch.randn(batch, *shape, generator=g)


def measure(name, build, shape, batch) -> dict:
    import torch

    import gradlint

    torch.manual_seed(0)
    model = build()
    small = gradlint.lint(model, (inputs(shape, batch, 0),), threads=1).report.summary
    large = gradlint.lint(model, (inputs(shape, 10 * batch, 1),), threads=1, seed=1).report.summary
    ten = [gradlint.lint(model, (inputs(shape, batch, s),), threads=1, seed=s).report.summary for s in range(1, 11)]
    row = {"model": name, "batch": batch}
    for k in FIGURES:
        values = [getattr(t, k) for t in ten]
        mean = None if any(v is None for v in values) else sum(values) / len(values)
        row[k] = (getattr(small, k), getattr(small, k + "_error"), getattr(large, k), mean)
    return row


def covered(v, err, big) -> bool | None:
    if v is None or big is None or err is None:
        return None
    return abs(big - v) <= err + 1e-12 * max(abs(v), 1.0)


def _g(x) -> str:
    return "-" if x is None else format(x, ".3g")


def table(rows) -> str:
    lines = ["| model | " + " | ".join(FIGURES) + " |", "|---|" + "---|" * len(FIGURES)]
    for r in rows:
        cells = []
        for k in FIGURES:
            v, err, big, mean = r[k]
            marks = "".join("" if c is None else "+" if c else "x" for c in
                            (covered(v, err, mean), covered(v, err, big)))
            cells.append("-" if v is None else f"{v:.3g} +/- {'?' if err is None else format(err, '.2g')} "
                                               f"(10 probes {_g(mean)}, 10x batch {_g(big)}) {marks}")
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def coverage(rows) -> str:
    return ("against the mean of 10 probes of the same batch size:\n" + _coverage(rows, 3)
            + "\n\nagainst one probe of a 10x larger batch:\n" + _coverage(rows, 2))


def _coverage(rows, reference: int) -> str:
    lines, total, hit = [], 0, 0
    for k in FIGURES:
        marks = [covered(r[k][0], r[k][1], r[k][reference]) for r in rows]
        n = sum(m is not None for m in marks)
        h = sum(bool(m) for m in marks)
        none = sum(1 for r in rows if r[k][0] is not None and r[k][1] is None)
        total, hit = total + n, hit + h
        lines.append(f"{k}: {h} of {n} covered" + (f" ({none} without an error bar)" if none else ""))
    lines.append(f"all figures: {hit} of {total} covered ({100 * hit / max(total, 1):.0f}%)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", action="store_true", help="also stock models (needs torchvision, timm)")
    parser.add_argument("--only-zoo", action="store_true", help="the stock models alone")
    parser.add_argument("--tiny", action="store_true", help="two paper nets, for a smoke run")
    parser.add_argument("--batch", type=int, help="probe every model at this batch instead of its own (above "
                        "64 the error bars resample runs of consecutive samples)")
    parser.add_argument("--json", help="also write every row to this file")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    models = [] if args.only_zoo else paper_models()
    if args.tiny:
        models = [m for m in models if m[0] in ("MLP batch-relu", "ResNet a=0.2")]
    if args.zoo or args.only_zoo:
        models += zoo_models()
    rows = []
    for m in models:
        rows.append(measure(*m[:3], args.batch or m[3]))
        print(f"done {m[0]}", file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(table(rows))
    print()
    print(coverage(rows))


if __name__ == "__main__":
    sys.exit(main())
