"""NAS-Bench-201 as an external ground truth: gradlint's verdicts and figures against trained accuracy.

NAS-Bench-201 (Dong & Yang, ICLR 2020) trained every one of its 15,625 cells on CIFAR-10 in the same
macro skeleton.  The package ``analog-nasbench`` (0.1.3) ships those cells with their trained CIFAR-10
accuracy ("baseline_accuracy").  Install it without its dependencies (this script reads the data file
with a restricted unpickler and never imports the package, which needs pandas)::

    pip install --no-deps analog-nasbench==0.1.3
    OMP_NUM_THREADS=1 python benchmarks/nasbench201.py --connected 1000 --json /tmp/nb201.json

Sample: every cell with no path from the cell's input to its output (they are the ones stuck at chance)
plus ``--connected`` others drawn uniformly (seeded).  For each cell the standard network is built (stem,
3 stages of 5 cells at 16/32/64 channels, residual reduction blocks, BN-ReLU head) and linted at batch 16,
32x32.  Printed: how the disconnected cells are flagged, the errors on connected cells, and the rank
correlation (Spearman) and AUROC (cells under 80% accuracy) of gradlint's figures beside parameter
count's on the same sample.  ``--tiny`` lints a handful of cells (CI runs ``--help``).

The network follows the published macro skeleton (D-X-Y/AutoDL-Projects, ``TinyNetwork``, ``InferCell``,
``ResNetBasicblock``, ``ReLUConvBN``); this is the project's own version of it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import pickle
import random
import sys
import time
from pathlib import Path

from ranking import auroc, spearman

# Op codes in NASLib order (as analog-nasbench stores them), and the cell's edges (from node, to node);
# node 1 is the cell's input, node 4 its output.
OPS = {0: "skip", 1: "none", 2: "conv3x3", 3: "conv1x1", 4: "avgpool"}
EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))


def data_file() -> Path:
    """analog-nasbench's data file, found without importing the package (its import needs pandas)."""
    spec = importlib.util.find_spec("analognasbench")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nasbench201.py: analog-nasbench is not installed; run "
                         "`pip install --no-deps analog-nasbench==0.1.3` and try again")
    return Path(next(iter(spec.submodule_search_locations))) / "data.anb"


class _Record:
    """Stands in for analog-nasbench's record classes: their attributes, nothing else."""

    def __setstate__(self, state):
        self.__dict__.update(state)


class _Restricted(pickle.Unpickler):
    ALLOWED = {("analognasbench.data", "Architecture"), ("analognasbench.data", "DriftMeasurement")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return _Record
        raise pickle.UnpicklingError(f"data.anb asks for {module}.{name}, which this reader does not allow")


def load_accuracies() -> dict[tuple[int, ...], float]:
    """Every cell (six op codes) and its trained CIFAR-10 test accuracy in percent."""
    with open(data_file(), "rb") as f:
        table = _Restricted(f).load()
    return {tuple(cell): float(rec.baseline_accuracy) for cell, rec in table.items()}


def connected(cell) -> bool:
    """Whether some path from the cell's input reaches its output over edges that are not 'none'."""
    reach = {1}
    for (a, b), op in zip(EDGES, cell):
        if a in reach and OPS[op] != "none":
            reach.add(b)
    return 4 in reach


def build(cell, channels: int = 16, cells_per_stage: int = 5, classes: int = 10):
    """The NAS-Bench-201 network for ``cell``, at PyTorch's default initialisation."""
    import torch
    from torch import nn

    def relu_conv_bn(c_in, c_out, k, stride):
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out))

    def op(code, c):
        name = OPS[code]
        if name == "conv3x3":
            return relu_conv_bn(c, c, 3, 1)
        if name == "conv1x1":
            return relu_conv_bn(c, c, 1, 1)
        if name == "avgpool":
            return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        if name == "skip":
            return nn.Identity()
        return Zero()

    class Zero(nn.Module):
        def forward(self, x):
            return x.mul(0.0)

    class Cell(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.edges = nn.ModuleList(op(code, c) for code in cell)

        def forward(self, x):
            nodes = {1: x}
            for target in (2, 3, 4):
                nodes[target] = sum(self.edges[i](nodes[a]) for i, (a, b) in enumerate(EDGES) if b == target)
            return nodes[4]

    class Reduction(nn.Module):
        """The residual reduction block between stages (stride 2, channels doubled)."""

        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv_a = relu_conv_bn(c_in, c_out, 3, 2)
            self.conv_b = relu_conv_bn(c_out, c_out, 3, 1)
            self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

        def forward(self, x):
            return self.downsample(x) + self.conv_b(self.conv_a(x))

    class Network(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
            body, c = [], channels
            for stage in range(3):
                if stage:
                    body.append(Reduction(c, 2 * c))
                    c *= 2
                body.extend(Cell(c) for _ in range(cells_per_stage))
            self.cells = nn.Sequential(*body)
            self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c, classes)

        def forward(self, x):
            x = self.lastact(self.cells(self.stem(x)))
            return self.classifier(self.pool(x).flatten(1))

    torch.manual_seed(0)
    return Network()


def sample(accuracies, connected_cells: int, seed: int):
    cells = sorted(accuracies)
    off = [c for c in cells if not connected(c)]
    on = [c for c in cells if connected(c)]
    return off + random.Random(seed).sample(on, min(connected_cells, len(on)))


def lint_cell(cell, batch: int):
    import torch

    import gradlint
    from gradlint.report import SEVERITY_RANK

    model = build(cell)
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    result = gradlint.lint(model, (x,), target="nb201-" + "".join(map(str, cell)), batch_size=batch, threads=1)
    report = result.report
    s = report.summary
    worst = max((f.severity for f in result.findings), key=SEVERITY_RANK.get, default="clean")
    return {
        "cell": list(cell), "seconds": round(time.perf_counter() - start, 3),
        "params": sum(p.numel() for p in model.parameters()),
        "severity": worst, "codes": sorted({f.code + ":" + f.severity for f in result.findings}),
        "gsc_input": s.gsc_input, "gsc_max": s.gsc_max, "effective_depth": s.effective_depth,
        "compositional_depth": s.compositional_depth,
    }


def _worker(args):
    cell, batch = args
    import torch
    torch.set_num_threads(1)
    return lint_cell(cell, batch)








def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connected", type=int, default=1000, help="connected cells drawn uniformly (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--batch", type=int, default=16, help="probe batch (default 16)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    parser.add_argument("--tiny", action="store_true", help="a handful of cells, for a smoke run")
    parser.add_argument("--json", help="also write every row to this file")
    args = parser.parse_args(argv)
    accuracies = load_accuracies()
    cells = sample(accuracies, args.connected, args.seed)
    if args.tiny:
        cells = cells[:3] + cells[-3:]
    rows = run(cells, args.batch, args.workers)
    for row in rows:
        row["accuracy"] = accuracies[tuple(row["cell"])]
        row["connected"] = connected(row["cell"])
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(summarise(rows))


def run(cells, batch, workers):
    if workers <= 1:
        return [lint_cell(c, batch) for c in cells]
    import multiprocessing
    # spawn, not fork: forking after torch's OpenMP pool has run hangs the child.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        rows = []
        for i, row in enumerate(pool.imap(_worker, [(c, batch) for c in cells], chunksize=4)):
            rows.append(row)
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{len(cells)} cells", file=sys.stderr)
        return rows


def summarise(rows) -> str:
    from gradlint.report import SEVERITY_RANK

    off = [r for r in rows if not r["connected"]]
    on = [r for r in rows if r["connected"]]
    lines = [f"cells linted: {len(rows)} ({len(off)} disconnected, {len(on)} connected); "
             f"median {sorted(r['seconds'] for r in rows)[len(rows) // 2]:.2f} s a cell"]
    flagged = [r for r in off if r["severity"] == "error"]
    lines.append(f"disconnected flagged as error: {len(flagged)} of {len(off)}; by code: "
                 + ", ".join(f"{c} {n}" for c, n in _codes(off, 'error')))
    false = [r for r in on if r["severity"] == "error"]
    lines.append(f"connected flagged as error: {len(false)} of {len(on)}"
                 + (f" (best accuracy among them {max(r['accuracy'] for r in false):.1f}%); by code: "
                    + ", ".join(f"{c} {n}" for c, n in _codes(false, 'error')) if false else ""))
    n_def = sum(r["effective_depth"] is not None for r in on)
    lines.append(f"effective depth defined: {n_def} of {len(on)} connected cells")
    lines.append("")
    lines.append("| figure | Spearman vs accuracy, all | connected only | AUROC for < 80% (all) | connected only |")
    lines.append("|---|---|---|---|---|")
    figures = {
        "parameter count": lambda r: r["params"],
        "effective depth": lambda r: r["effective_depth"],
        "GSC input": lambda r: r["gsc_input"],
        "log GSC max": lambda r: math.log(r["gsc_max"]) if r["gsc_max"] else None,
        "- severity": lambda r: -SEVERITY_RANK.get(r["severity"], -1),
    }
    for name, get in figures.items():
        cells = []
        for group in (rows, on):
            pairs = [(get(r), r["accuracy"]) for r in group if get(r) is not None]
            if len(pairs) < 3:
                cells += ["n/a", "n/a"]
                continue
            xs, ys = zip(*pairs)
            cells.append(f"{spearman(xs, ys):.3f} (n={len(xs)})")
        aucs = []
        for group in (rows, on):
            pairs = [(get(r), r["accuracy"] < 80) for r in group if get(r) is not None]
            xs, low = zip(*pairs) if pairs else ((), ())
            # a low score should mean a poor cell: AUROC of -figure for the class "below 80%"
            aucs.append(f"{auroc([-v for v in xs], list(low)):.3f}" if pairs else "n/a")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {aucs[0]} | {aucs[1]} |")
    return "\n".join(lines)


def _codes(rows, severity):
    counts = {}
    for r in rows:
        for c in r["codes"]:
            code, sev = c.split(":")
            if sev == severity:
                counts[code] = counts.get(code, 0) + 1
    return sorted(counts.items())


if __name__ == "__main__":
    main()
