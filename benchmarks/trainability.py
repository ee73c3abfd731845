"""Will it train?  gradlint's verdict before training against what training does: the paper's experiment in
miniature, on data that needs no download.

Tasks:
- ``teacher``: 100-dimensional Gaussian inputs labelled by a random two-layer ReLU teacher (5 classes):
  a task no linear model fits;
- ``digits``: scikit-learn's 8x8 digits (10 classes), as 64 features padded to 100 for the MLPs and
  as 1x8x8 images for the CNNs: a task a linear model nearly fits;
- ``recall``: sequences of 12 tokens (vocabulary 8) whose label is the first token: a sequence task
  for an LSTM, a plain tanh RNN and Transformers (with and without skips and norms).

Every net is linted once as a user would (``gradlint.lint`` on Gaussian or random-token inputs of the
task's shape), then trained from that state for ``--steps`` steps (batch 128) at each learning rate of
its family's grid and ``--seeds`` seeds (SGD with momentum 0.9 for MLPs and CNNs, as in the paper; Adam
for the sequence models, their standard recipe); the learning rate with the lowest mean final loss
counts.  A net *fails to train* when its final training loss (mean of the last 20 steps) stays above
half the loss of chance (ln C).  Printed: the table, then per task the rank correlation (Spearman) of
severity and of each key figure with the final loss, how many nets that fail are flagged at warning or
above, and how many that train are flagged as errors.  ``--fast``: one net per family, one seed, one
learning rate, 30 steps (a smoke run).  ``--plot FILE`` draws verdict against outcome.  One thread.

    OMP_NUM_THREADS=1 python benchmarks/trainability.py --json /tmp/train.json --plot docs/trainability.png
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from ranking import spearman

SEVERITY = {"clean": 0, "info": 1, "warning": 2, "error": 3}
CEILING = 1.5        # loss / chance above this (a diverged run) is drawn at the top of the plot
FIGURES = ("gsc_input", "explosion_rate", "effective_depth", "min_sign_diversity", "min_relative_spread")


# --------------------------------------------------------------------------- data


def teacher_data(n: int = 4096, dim: int = 100, classes: int = 5, seed: int = 7):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    w1 = torch.randn(dim, 100, generator=g) * (2 / dim) ** 0.5
    w2 = torch.randn(100, classes, generator=g) * (2 / 100) ** 0.5
    y = (torch.relu(x @ w1) @ w2).argmax(1)
    return x[: n - 1024], y[: n - 1024], x[n - 1024:], y[n - 1024:], classes


def digits_data(images: bool, seed: int = 7):
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-3)
    y = torch.tensor(d.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    x = x.reshape(-1, 1, 8, 8) if images else torch.cat([x, torch.zeros(len(x), 36)], 1)
    return x[:1347], y[:1347], x[1347:], y[1347:], 10


def recall_data(n: int = 4096, length: int = 12, vocab: int = 8, seed: int = 7):
    import torch

    x = torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(seed))
    y = x[:, 0].clone()
    return x[: n - 1024], y[: n - 1024], x[n - 1024:], y[n - 1024:], vocab


# --------------------------------------------------------------------------- nets


def mlp(name: str, classes: int):
    from gradlint import paper

    return paper.mlp(name, 50, 100, classes)


def paper_resnet(classes: int):
    """The paper's batch-ReLU ResNet, 50 blocks, branches scaled by 0.2."""
    from gradlint import paper

    return paper.ResNet(0.2, 50, 100, classes)


def default_init_mlp(classes: int, depth: int = 20):
    """PyTorch's default Linear init, ReLU: the signal shrinks until the biases dominate."""
    import torch.nn as nn

    layers = []
    for _ in range(depth):
        layers += [nn.Linear(100, 100), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(100, classes))


def saturated_head_mlp(classes: int):
    """A healthy residual MLP whose head is drawn 100x too large: the softmax starts saturated."""
    import torch

    from gradlint import paper

    net = paper.ResNet(0.2, 10, 100, classes)
    with torch.no_grad():
        net.head.weight.mul_(100.0)
    return net


def wide_tanh_mlp(classes: int):
    """tanh with weights three times the LeCun scale: units saturate."""
    import torch.nn as nn

    layers = []
    for _ in range(20):
        lin = nn.Linear(100, 100)
        nn.init.normal_(lin.weight, std=3 / 100 ** 0.5)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(100, classes))


def cnn(depth: int, residual: bool, classes: int = 10, width: int = 16):
    """A BN-ReLU conv net on 1x8x8 images: a stem, ``depth - 1`` 3x3 convs (in residual pairs when
    ``residual``), global pooling and a linear head."""
    import torch.nn as nn

    def unit():
        return [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]

    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(*unit(), nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))

        def forward(self, x):
            return (x + self.f(x)).relu()

    body = [Pair() for _ in range((depth - 1) // 2)] if residual else \
        [m for _ in range(depth - 1) for m in unit()]
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                         *body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def transformer(pre_norm: bool, classes: int, vocab: int = 8, width: int = 64, layers: int = 6):
    """A small Transformer encoder (learned positions) classifying from its first position."""
    import torch
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, width)
            self.pos = nn.Parameter(torch.randn(1, 12, width) * 0.02)
            layer = nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.0, batch_first=True,
                                               norm_first=pre_norm)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width) if pre_norm else nn.Identity()
            self.head = nn.Linear(width, classes)

        def forward(self, tokens):
            return self.head(self.norm(self.encoder(self.embed(tokens) + self.pos))[:, -1])

    return Net()


def _token_classifier(block, classes: int, vocab: int, width: int, layers: int):
    """Embedding and learned positions, ``layers`` blocks made by ``block()``, and a linear head reading the
    last position: the frame the Transformers without skips or norms share."""
    import torch
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, width)
            self.pos = nn.Parameter(torch.randn(1, 12, width) * 0.02)
            self.blocks = nn.Sequential(*(block() for _ in range(layers)))
            self.head = nn.Linear(width, classes)

        def forward(self, tokens):
            return self.head(self.blocks(self.embed(tokens) + self.pos)[:, -1])

    return Net()


def plain_transformer(classes: int, vocab: int = 8, width: int = 64, layers: int = 6):
    """Transformer blocks with their skips removed: x = LN(attention(x)), x = LN(MLP(x))."""
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(width, 4, batch_first=True)
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.ReLU(), nn.Linear(4 * width, width))

        def forward(self, x):
            x = self.ln1(self.attn(x, x, x, need_weights=False)[0])
            return self.ln2(self.mlp(x))

    return _token_classifier(Block, classes, vocab, width, layers)


def unnormed_transformer(classes: int, scale: float = 1.0, layers: int = 6, vocab: int = 8, width: int = 64):
    """Pre-norm blocks with their norms left out (x + attn(x), x + mlp(x)) and every weight matrix of the
    blocks scaled by ``scale``: at 1 the residual stream grows gently, at 3 it explodes."""
    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(width, 4, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.ReLU(), nn.Linear(4 * width, width))

        def forward(self, x):
            x = x + self.attn(x, x, x, need_weights=False)[0]
            return x + self.mlp(x)

    net = _token_classifier(Block, classes, vocab, width, layers)
    with torch.no_grad():
        for p in net.blocks.parameters():
            if p.dim() == 2:
                p.mul_(scale)
    return net


def tied_transformer(classes: int, vocab: int = 8, width: int = 64):
    """A pre-norm Transformer whose head is tied to its N(0, 1) embedding, without a final norm: the logits
    start at the scale of the residual stream times sqrt(width)."""
    net = transformer(True, classes, vocab, width)
    net.norm = __import__("torch").nn.Identity()
    net.head.weight = net.embed.weight
    return net


def recurrent(classes: int, cell: str = "LSTM", vocab: int = 8, width: int = 64):
    """Two stacked recurrent layers (``cell``: LSTM or RNN, the plain tanh RNN) reading the sequence."""
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, width)
            self.rnn = getattr(nn, cell)(width, width, 2, batch_first=True)
            self.head = nn.Linear(width, classes)

        def forward(self, tokens):
            return self.head(self.rnn(self.embed(tokens))[0][:, -1])

    return Net()


# (task, net, family, builder(classes)); the family decides the optimiser and the learning-rate grid
NETS = [
    *[("teacher", f"MLP {n}", "mlp", lambda c, n=n: mlp(n, c)) for n in
      ("relu", "tanh", "selu", "linear", "layer-relu", "layer-tanh", "batch-relu", "batch-tanh")],
    ("teacher", "ResNet batch-ReLU a=0.2", "mlp", paper_resnet),
    ("teacher", "MLP default init (20)", "mlp", default_init_mlp),
    ("teacher", "MLP tanh 3x init (20)", "mlp", wide_tanh_mlp),
    ("teacher", "ResNet, 100x head", "mlp", saturated_head_mlp),
    *[("digits", f"MLP {n}", "mlp", lambda c, n=n: mlp(n, c)) for n in ("relu", "tanh", "linear", "batch-relu")],
    ("digits", "ResNet batch-ReLU a=0.2", "mlp", paper_resnet),
    ("digits", "CNN plain 10", "cnn", lambda c: cnn(10, False, c)),
    ("digits", "CNN plain 30", "cnn", lambda c: cnn(30, False, c)),
    ("digits", "CNN residual 31", "cnn", lambda c: cnn(31, True, c)),
    ("recall", "Transformer pre-norm", "seq", lambda c: transformer(True, c)),
    ("recall", "Transformer post-norm", "seq", lambda c: transformer(False, c)),
    ("recall", "LSTM 2 layers", "seq", recurrent),
    ("recall", "Transformer without skips", "seq", plain_transformer),
    ("recall", "Transformer, head tied to N(0,1) embedding", "seq", tied_transformer),
    ("recall", "Transformer without skips, 12 blocks", "seq", lambda c: plain_transformer(c, layers=12)),
    ("recall", "Transformer without norms, 12 blocks", "seq", lambda c: unnormed_transformer(c, layers=12)),
    ("recall", "Transformer without norms, 3x init", "seq", lambda c: unnormed_transformer(c, scale=3.0)),
    ("recall", "tanh RNN 2 layers", "seq", lambda c: recurrent(c, "RNN")),
]
FAST = {"MLP batch-relu", "CNN residual 31", "Transformer pre-norm"}
LEARNING_RATES = {"mlp": (0.001, 0.01, 0.1), "cnn": (0.003, 0.03, 0.3), "seq": (1e-4, 3e-4, 1e-3)}


def data_for(task: str, family: str):
    if task == "teacher":
        return teacher_data()
    if task == "recall":
        return recall_data()
    return digits_data(images=family == "cnn")


# --------------------------------------------------------------------------- runs


def verdict(model, x_train):
    """gradlint's verdict and key figures, probing as a user would: random inputs of the task's shape."""
    import torch

    import gradlint

    if x_train.is_floating_point():
        probe = torch.randn(64, *x_train.shape[1:], generator=torch.Generator().manual_seed(1))
    else:
        probe = torch.randint(0, int(x_train.max()) + 1, (64, *x_train.shape[1:]),
                              generator=torch.Generator().manual_seed(1))
    result = gradlint.lint(model, (probe,), threads=1)
    s = result.report.summary
    worst = max((f.severity for f in result.findings), key=SEVERITY.get, default="clean")
    return {"severity": worst,
            "codes": sorted({f"{f.code}:{f.severity}" for f in result.findings}),
            **{k: getattr(s, k) for k in FIGURES}}


def train(build, data, family: str, lr: float, seed: int, steps: int):
    import torch
    import torch.nn.functional as F

    x, y, xt, yt, classes = data
    torch.manual_seed(seed)
    model = build(classes)
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if family == "seq"
           else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    g = torch.Generator().manual_seed(seed + 100)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        if not torch.isfinite(loss):
            losses.append(float("inf"))
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    final = statistics.fmean(losses[-20:]) if all(math.isfinite(v) for v in losses[-20:]) else float("inf")
    model.eval()
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1) == yt).float().mean())
    return final, accuracy


def run_net(args):
    index, seeds, rates, steps = args
    task, name, family, build = NETS[index]
    import torch

    torch.set_num_threads(1)
    data = data_for(task, family)
    torch.manual_seed(0)
    start = time.perf_counter()
    row = {"task": task, "net": name, **verdict(build(data[4]), data[0])}
    row["lint_s"] = round(time.perf_counter() - start, 2)
    best = None
    for lr in rates:
        runs = [train(build, data, family, lr, seed, steps) for seed in range(seeds)]
        losses = [r[0] for r in runs]
        mean = statistics.fmean(losses) if all(math.isfinite(v) for v in losses) else float("inf")
        if best is None or mean < best[0]:
            best = (mean, lr, runs)
    mean, lr, runs = best
    losses, accs = [r[0] for r in runs], [r[1] for r in runs]
    chance = math.log(data[4])
    row.update(lr=lr, loss=mean, loss_sd=statistics.stdev(losses) if len(losses) > 1 and math.isfinite(mean) else 0.0,
               accuracy=statistics.fmean(accs), accuracy_sd=statistics.stdev(accs) if len(accs) > 1 else 0.0,
               chance_loss=chance, trains=mean < 0.5 * chance)
    return row


# --------------------------------------------------------------------------- figures






def _num(v, fmt="{:.3g}"):
    return "-" if v is None else fmt.format(v)


def table(rows) -> str:
    lines = ["| task | net | verdict | codes (warning+) | GSC input | rate | eff. depth | min sign div. | "
             "final loss (chance) | accuracy | trains |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        codes = ", ".join(c.split(":")[0] for c in r["codes"] if c.split(":")[1] in ("warning", "error")) or "-"
        lines.append(
            f"| {r['task']} | {r['net']} | {r['severity']} | {codes} | {_num(r['gsc_input'])} | "
            f"{_num(r['explosion_rate'], '{:.3f}')} | {_num(r['effective_depth'], '{:.1f}')} | "
            f"{_num(r['min_sign_diversity'], '{:.3f}')} | {r['loss']:.3f} +/- {r['loss_sd']:.3f} "
            f"({r['chance_loss']:.2f}) | {r['accuracy']:.3f} +/- {r['accuracy_sd']:.3f} | "
            f"{'yes' if r['trains'] else 'no'} |")
    return "\n".join(lines)


def summary(rows) -> str:
    lines = []
    for task in dict.fromkeys(r["task"] for r in rows):
        group = [r for r in rows if r["task"] == task]
        loss = [min(r["loss"], 1e9) for r in group]
        parts = [f"severity {spearman([SEVERITY[r['severity']] for r in group], loss):.2f}"]
        for k in ("gsc_input", "explosion_rate", "effective_depth", "min_sign_diversity"):
            pairs = [(r[k], l) for r, l in zip(group, loss) if r[k] is not None]
            if len(pairs) >= 3:
                parts.append(f"{k} {spearman(*zip(*pairs)):.2f}")
        lines.append(f"{task} ({len(group)} nets): Spearman with final loss: " + ", ".join(parts))
    fails = [r for r in rows if not r["trains"]]
    trains = [r for r in rows if r["trains"]]
    flagged = [r for r in fails if SEVERITY[r["severity"]] >= 2]
    false = [r for r in trains if r["severity"] == "error"]
    lines.append(f"nets that fail to train flagged at warning or above: {len(flagged)} of {len(fails)}"
                 + (f" (missed: {', '.join(r['task'] + '/' + r['net'] for r in fails if r not in flagged)})"
                    if len(flagged) < len(fails) else ""))
    lines.append(f"nets that train flagged as error: {len(false)} of {len(trains)}"
                 + (f" ({', '.join(r['task'] + '/' + r['net'] for r in false)})" if false else ""))
    quiet = [r for r in trains if SEVERITY[r["severity"]] <= 1]
    lines.append(f"nets that train at info or below: {len(quiet)} of {len(trains)}")
    # a warning on a net that trains is still true when it trains worse: its final loss is above the best
    # net's of its task by more than a tenth of chance
    best = {t: min(r["loss"] for r in rows if r["task"] == t) for t in {r["task"] for r in rows}}
    warned = [r for r in trains if r["severity"] == "warning"]
    worse = [r for r in warned if r["loss"] > best[r["task"]] + 0.1 * r["chance_loss"]]
    lines.append(f"nets that train flagged at warning: {len(warned)}, of which train worse than their task's best "
                 f"net by more than a tenth of chance: {len(worse)}"
                 + (" (" + ", ".join(f"{r['task']}/{r['net']} {r['loss']:.3f} vs {best[r['task']]:.3f}"
                                     for r in warned) + ")" if warned else ""))
    return "\n".join(lines)


def plot(rows, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    for i, task in enumerate(tasks):
        group = [r for r in rows if r["task"] == task]
        xs = [SEVERITY[r["severity"]] + (i - len(tasks) / 2) * 0.08 for r in group]
        # a diverged run (loss far above chance, or infinite) is drawn at the top of the axis
        ys = [min(r["loss"] / r["chance_loss"], CEILING) for r in group]
        sds = [0.0 if y == CEILING else r["loss_sd"] / r["chance_loss"] for y, r in zip(ys, group)]
        ax.errorbar(xs, ys, yerr=sds, fmt="o", label=task, capsize=2)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(-0.05, CEILING + 0.05)
    ax.set_xticks(range(4), list(SEVERITY))
    ax.set_xlabel("gradlint verdict at initialisation")
    ax.set_ylabel("final training loss / chance loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per learning rate (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--fast", action="store_true", help="one net per family, one seed and rate, 30 steps")
    parser.add_argument("--json", help="also write every row to this file")
    parser.add_argument("--plot", help="draw verdict against outcome to this PNG or SVG")
    args = parser.parse_args(argv)
    seeds, steps = (1, 30) if args.fast else (args.seeds, args.steps)
    jobs = [(i, seeds, LEARNING_RATES[family][1:2] if args.fast else LEARNING_RATES[family], steps)
            for i, (task, name, family, build) in enumerate(NETS) if not args.fast or name in FAST]
    if args.workers > 1 and len(jobs) > 1:
        import multiprocessing
        # spawn, not fork: forking after torch's OpenMP pool has run hangs the child
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            rows = pool.map(run_net, jobs, chunksize=1)
    else:
        rows = [run_net(j) for j in jobs]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, args.plot)
    print(table(rows))
    print()
    print(summary(rows))


if __name__ == "__main__":
    sys.exit(main())
