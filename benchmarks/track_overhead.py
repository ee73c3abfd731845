"""What does ``gradlint.track(model, every=N)`` cost a training run?  The paper's nets and a small
Transformer trained with and without tracking; the overhead is the time tracking adds to training.

Nets and tasks (from ``benchmarks/trainability.py``): the batch-ReLU MLP (50 x 100) and the paper's
batch-ReLU ResNet (50 blocks of width 100, branches scaled by 0.2) on the ``teacher`` task, SGD with
momentum 0.9 at lr 0.01; a pre-norm Transformer encoder (6 layers, width 64, 4 heads) on the ``recall``
task, Adam at lr 3e-4; batch 128.  Each run builds the net after ``torch.manual_seed(0)`` and trains
``--steps`` steps; a tracked run calls ``tracker.step(x)`` before each update, so it probes at steps 0,
every, 2 * every, ... on the loop's own batch (``--steps`` / ``--every`` probes), its first probe
capturing the graph.  Times are the process's CPU time (one thread), which other processes on a shared
machine do not inflate as they inflate wall time.  Two overheads: "in run", the time inside
``tracker.step`` over the rest of the same tracked run (median over runs), and "runs compared",
(median tracked run - median untracked run) / median untracked run, runs alternating, ``--reps`` of
each.  Also printed: one step's time (untracked) and one probe's (time inside the tracker / probes).

    OMP_NUM_THREADS=1 python benchmarks/track_overhead.py [--steps 1000] [--every 100] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

NETS = ("MLP batch-relu", "ResNet batch-ReLU a=0.2", "Transformer pre-norm")


def net(name: str):
    """(build(classes), data, family) of one of ``NETS``."""
    import trainability as t

    if name == "MLP batch-relu":
        return (lambda c: t.mlp("batch-relu", c)), t.teacher_data(), "mlp"
    if name == "ResNet batch-ReLU a=0.2":
        return t.paper_resnet, t.teacher_data(), "mlp"
    return (lambda c: t.transformer(True, c)), t.recall_data(), "seq"


def train(build, data, family: str, steps: int, tracker_for=None, lr: float | None = None, seed: int = 0,
          last: bool = False):
    """Train ``build(classes)`` for ``steps`` steps (batch 128); ``tracker_for(model)``, when given, makes a
    tracker whose ``step`` sees every batch before its update (and, with ``last``, the batch after the
    last update too).  Returns (CPU seconds of the loop, CPU seconds inside the tracker, model, tracker):
    the process's CPU time, which other processes on the machine do not inflate as they do wall time."""
    import torch
    import torch.nn.functional as F

    x, y, _, _, classes = data
    torch.manual_seed(seed)
    model = build(classes)
    opt = (torch.optim.Adam(model.parameters(), lr=lr or 3e-4) if family == "seq"
           else torch.optim.SGD(model.parameters(), lr=lr or 0.01, momentum=0.9))
    g = torch.Generator().manual_seed(seed + 100)
    model.train()
    start = time.process_time()
    tracker = tracker_for(model) if tracker_for else None
    tracking = 0.0
    for step in range(steps + 1):
        idx = torch.randint(0, len(x), (128,), generator=g)
        if tracker is not None and (step < steps or last):
            before = time.process_time()
            tracker.step(x[idx], step)
            tracking += time.process_time() - before
        if step == steps:
            break
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.process_time() - start, tracking, model, tracker


def measure(name: str, steps: int, every: int, reps: int) -> dict:
    import gradlint

    build, data, family = net(name)
    plain, tracked, probing, probes = [], [], [], 0
    for _ in range(reps):
        plain.append(train(build, data, family, steps)[0])
        seconds, tracking, _, tracker = train(build, data, family, steps, lambda m: gradlint.track(m, every=every))
        tracked.append(seconds)
        probing.append(tracking)
        probes = len(tracker.points)
    off, on, inside = statistics.median(plain), statistics.median(tracked), statistics.median(probing)
    return {"net": name, "steps": steps, "every": every, "probes": probes, "untracked_s": off, "tracked_s": on,
            "step_ms": 1e3 * off / steps, "probe_ms": 1e3 * inside / probes,
            "overhead_in_run": statistics.median(t / (s - t) for s, t in zip(tracked, probing)),
            "overhead": (on - off) / off}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps per run (default 1000)")
    parser.add_argument("--every", type=int, default=100, help="steps between probes (default 100)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each kind per net (default 3)")
    parser.add_argument("--nets", default=",".join(NETS), help=f"comma-separated, of: {', '.join(NETS)}")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print(f"{'net':26} {'steps':>5} {'probes':>6} {'untracked s':>11} {'tracked s':>9} {'step ms':>7} "
          f"{'probe ms':>8} {'overhead in run':>15} {'runs compared':>13}")
    for name in args.nets.split(","):
        r = measure(name.strip(), args.steps, args.every, args.reps)
        print(f"{r['net']:26} {r['steps']:5d} {r['probes']:6d} {r['untracked_s']:11.2f} {r['tracked_s']:9.2f} "
              f"{r['step_ms']:7.2f} {r['probe_ms']:8.1f} {100 * r['overhead_in_run']:14.1f}% "
              f"{100 * r['overhead']:12.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
