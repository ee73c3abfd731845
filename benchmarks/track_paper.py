"""The paper's claim that training changes the GSC and that a ResNet's effective depth grows as it trains
(Philipp et al., section 7), measured with ``gradlint.track``.

The batch-ReLU MLP (50 x 100) and the paper's batch-ReLU ResNets (50 blocks of width 100, branches
scaled by 0.1, 0.2, 0.5 and 1) are trained on the ``teacher`` task of ``benchmarks/trainability.py``
(100-dimensional Gaussian inputs, labels from a random two-layer ReLU teacher, 5 classes; no download),
batch 128, SGD with momentum 0.9, ``--lr`` (default 0.01), each net built after ``torch.manual_seed(0)``,
with ``gradlint.track(model, every=100)`` probing the loop's batch before each update (and once more after
the last).  Printed: GSC (largest on the spine) and effective depth at the steps of ``--table`` (default 0,
100 and 1000), and the training loss (mean of the last 20 steps).  ``--json FILE`` writes every net's
trajectory.  One thread.

    OMP_NUM_THREADS=1 python benchmarks/track_paper.py [--steps 1000] [--lr 0.01] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys

NETS = ("MLP batch-relu", *(f"ResNet batch-ReLU a={a:g}" for a in (0.1, 0.2, 0.5, 1.0)))


def build(name: str):
    from gradlint import paper

    if name == "MLP batch-relu":
        return lambda classes: paper.mlp("batch-relu", 50, 100, classes)
    alpha = float(name.rpartition("=")[2])
    return lambda classes: paper.ResNet(alpha, 50, 100, classes)


def final_loss(model, data) -> float:
    """The training loss over the first 1024 training samples, in training mode (BatchNorm on the batch's
    statistics: the running ones of an untrained net say nothing), without gradients."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        return float(F.cross_entropy(model(data[0][:1024]), data[1][:1024]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    parser.add_argument("--every", type=int, default=100, help="steps between probes (default 100)")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    parser.add_argument("--table", default="0,100,1000", help="steps shown in the table (default 0,100,1000)")
    parser.add_argument("--nets", default=",".join(NETS), help=f"comma-separated, of: {', '.join(NETS)}")
    parser.add_argument("--json", help="also write every net's trajectory to this file")
    args = parser.parse_args(argv)
    import torch

    import gradlint
    from trainability import teacher_data
    from track_overhead import train

    torch.set_num_threads(1)
    data = teacher_data()
    shown = [int(s) for s in args.table.split(",")]
    head = " | ".join(f"GSC @{s} | eff. depth @{s}" for s in shown)
    print(f"| net | {head} | loss @0 | loss @{args.steps} |")
    print("|---" * (2 * len(shown) + 3) + "|")
    trajectories = {}
    for name in args.nets.split(","):
        name = name.strip()
        _, _, model, tracker = train(build(name), data, "mlp", args.steps,
                                     lambda m: gradlint.track(m, every=args.every), lr=args.lr, last=True)
        torch.manual_seed(0)
        start = final_loss(build(name)(data[4]), data)
        at = {p.step: p for p in tracker.points}
        cells = " | ".join(f"{_num(at[s].figure('gsc_max'))} | {_num(at[s].figure('effective_depth'))}"
                           if s in at else "- | -" for s in shown)
        print(f"| {name} | {cells} | {start:.3f} | {final_loss(model, data):.3f} |", flush=True)
        trajectories[name] = tracker.to_dict()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(trajectories, indent=1) + "\n")
    return 0


def _num(v) -> str:
    return "-" if v is None else f"{v:.3g}"


if __name__ == "__main__":
    sys.exit(main())
