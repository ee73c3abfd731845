"""How far the scaling sweep's extrapolation holds: sweep a family at small sizes, predict a larger one,
and probe the larger one for real (several seeds: one instance of a deep net varies by +/-20% in GSC).

    OMP_NUM_THREADS=1 python benchmarks/sweep_check.py

Families: the paper's batch-ReLU MLP (depth 6, 12, 24 -> 50, width 100, batch 256 of Gaussian inputs) and
a pre-norm GPT-style Transformer (2, 4, 8 -> 24 layers, width 64, 32 sequences of 16 tokens).  Printed for
each figure: the prediction, the real size's values over the seeds (geometric mean and range), and the
prediction's error against the geometric mean.
"""

from __future__ import annotations

import argparse
import math
import statistics

FIGURES = ("gsc_input", "gsc_max", "explosion_rate", "effective_depth", "min_sign_diversity")


def gpt(layers: int = 4, width: int = 64, vocab: int = 64, length: int = 16):
    """A pre-norm Transformer language model (nanoGPT's layout: LN -> attention, LN -> MLP, final LN)."""
    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.attn = nn.MultiheadAttention(width, 4, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

        def forward(self, x):
            h = self.ln1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, width)
            self.pos = nn.Parameter(torch.randn(1, length, width) * 0.02)
            self.blocks = nn.Sequential(*(Block() for _ in range(layers)))
            self.ln = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab)

        def forward(self, tokens):
            return self.head(self.ln(self.blocks(self.embed(tokens) + self.pos)))

    return GPT()


def batch_relu(depth: int = 12):
    from gradlint import paper

    return paper.mlp("batch-relu", depth)


def check(name, build, key, small, large, inputs, seeds):
    import gradlint

    found, _ = gradlint.sweep(build, key, small, inputs, predict=large, seed=0)
    predicted = {f.figure: f.predicted for f in found.fits}
    real = {k: [] for k in FIGURES}
    for seed in range(seeds):
        _, (result,) = gradlint.sweep(build, key, [large], inputs, seed=seed)
        for k in FIGURES:
            real[k].append(getattr(result.report.summary, k))
    lines = [f"{name}: {key} {', '.join(map(str, small))} -> {large} ({seeds} seeds at {large})",
             "| figure | predicted | real: geometric mean (range) | error |", "|---|---|---|---|"]
    for k in FIGURES:
        values = [v for v in real[k] if v]
        if not values or predicted.get(k) is None:
            continue
        mean = math.exp(statistics.fmean(math.log(v) for v in values))
        error = predicted[k] / mean - 1
        lines.append(f"| {k} | {predicted[k]:.4g} | {mean:.4g} ({min(values):.4g}-{max(values):.4g}) | {error:+.1%} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4, help="seeds at the large size (default 4)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    x = torch.randn(256, 100, generator=torch.Generator().manual_seed(1))
    tokens = torch.randint(0, 64, (32, 16), generator=torch.Generator().manual_seed(1))
    print(check("batch-ReLU MLP, width 100", batch_relu, "depth", [6, 12, 24], 50, x, args.seeds))
    print()
    print(check("pre-norm Transformer, width 64", gpt, "layers", [2, 4, 8], 24, tokens, args.seeds))


if __name__ == "__main__":
    main()
