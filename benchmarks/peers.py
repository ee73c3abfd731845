"""gradlint side by side with its peers: what one check of one batch costs next to a plain training step.

    OMP_NUM_THREADS=1 python benchmarks/peers.py [--reps 5] [--models mlp-relu,...] [--batch 64] [--clock cpu]

The peers are installed from the registry beside gradlint (they are not dependencies of the project):

    pip install --no-deps torch-audit==0.3.0 traintools==0.6.2

A peer that is not installed is left out of the table (its column says so).  What each tool's "check" is,
on the model's batch ``x`` and a fixed output gradient ``g`` (the same for every tool):

  plain        y = m(x); y.backward(g)                        the cost everything is measured against
  gradlint     gradlint.lint(m, example_inputs=x)             its own probe: forward, backward, statistics,
                                                              error bars (and the half-batch probe of a
                                                              BatchNorm model)
  torch-audit  torch_audit.audit_dynamic(m, every_n_steps=1): forward and backward through its Auditor
               (static, init, forward and backward phases of its default validators), then finish()
  traintools   y = m(x); y.backward(g); GradientHealthMonitor().inspect(m)   (its gradient-health check)

Models (``--models``; the paper's are 50 hidden layers of width 100, built by ``gradlint.paper``):

  mlp-relu, mlp-tanh, mlp-batch-relu, mlp-layer-tanh   the paper's MLPs; input ``--batch`` x 100
  resnet                                               the paper's ResNet (50 blocks, branch scale 0.2)
  cnn                                                  benchmarks/speed.py's ResNet-50, input 16 x 3 x 224 x 224
  transformer                                          benchmarks/speed.py's 12-block pre-norm Transformer,
                                                       input 16 x 128 x 512

Each (model, tool) pair runs in its own subprocess with ``--threads`` torch threads (default 1, and
OMP_NUM_THREADS): it builds the model after ``torch.manual_seed(0)``, runs one untimed call of the tool
and of the plain step, then ``--reps`` of each, alternating, and reports the median of tool / plain over
the repetitions: a ratio measured within one process, so the machine's load drifts over both alike.
``--clock cpu`` (the default) times with the process's CPU time, which other processes on a shared
machine disturb less than the wall clock; ``--clock wall`` times with ``time.perf_counter``.

The issue's target (17, item 6): the paper's MLPs under 3x a plain step, no larger model (the CNN, the
Transformer) above 1.0x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("gradlint", "torch-audit", "traintools")
PEERS = {"torch-audit": "torch_audit", "traintools": "traintools"}
MODELS = ("mlp-relu", "mlp-tanh", "mlp-batch-relu", "mlp-layer-tanh", "resnet", "cnn", "transformer")
SMALL = ("mlp-relu", "mlp-tanh", "mlp-batch-relu", "mlp-layer-tanh", "resnet")   # the paper's width-100 nets
TARGET_SMALL, TARGET_LARGE = 3.0, 1.0


def build(name: str, batch: int):
    """The model (train mode), its input and the fixed output gradient."""
    import torch

    from gradlint import paper

    torch.manual_seed(0)
    if name.startswith("mlp-"):
        model, x = paper.mlp(name[4:], 50, 100, 10), torch.randn(batch, 100)
    elif name == "resnet":
        model, x = paper.ResNet(0.2, 50, 100, 10), torch.randn(batch, 100)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import speed

        model, x, _ = speed.build(name, 12, "cpu")
    with torch.no_grad():
        g = torch.randn_like(model(x))
    return model.train(), x, g


def check_of(tool: str, model, x, g):
    """The tool's check of one batch, as a function of no arguments."""
    if tool == "plain":
        def call():
            model(x).backward(g)
    elif tool == "gradlint":
        import gradlint

        def call():
            gradlint.lint(model, example_inputs=x)
    elif tool == "torch-audit":
        import torch_audit

        def call():
            with torch_audit.audit_dynamic(model, every_n_steps=1) as auditor:
                auditor.backward((auditor.forward(x) * g).sum())
    else:
        from traintools import GradientHealthMonitor

        monitor = GradientHealthMonitor()

        def call():
            model(x).backward(g)
            monitor.inspect(model)
    return call


def child(tool: str, name: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    model, x, g = build(name, args.batch)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    calls = {"plain": check_of("plain", model, x, g), tool: check_of(tool, model, x, g)}

    def timed(call) -> float:
        model.zero_grad(set_to_none=True)
        start = clock()
        call()
        return clock() - start

    for call in calls.values():        # warm-up: lazy imports, allocator, first-call costs
        timed(call)
    runs: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(args.reps):
        for k, call in calls.items():
            runs[k].append(timed(call))
    ratios = [t / p for t, p in zip(runs[tool], runs["plain"])]
    return {"plain_s": statistics.median(runs["plain"]), "tool_s": statistics.median(runs[tool]),
            "ratio": statistics.median(ratios), "spread": max(ratios) / min(ratios)}


def installed(tool: str) -> bool:
    if tool not in PEERS:
        return True
    import importlib.util

    return importlib.util.find_spec(PEERS[tool]) is not None


def measure(tool: str, name: str, args: argparse.Namespace) -> dict | None:
    if not installed(tool):
        return None
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, __file__, "--child", tool, name, "--reps", str(args.reps), "--batch", str(args.batch),
           "--threads", str(args.threads), "--clock", args.clock]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"failed": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def cell(r: dict | None) -> str:
    if r is None:
        return "not installed"
    if "failed" in r:
        return "failed"
    return f"{r['ratio']:.2f}x ({r['tool_s'] * 1e3:.0f} ms)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, from {', '.join(TOOLS)}")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--batch", type=int, default=64, help="batch of the paper's nets (default 64)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--child", nargs=2, metavar=("TOOL", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args)))
        return
    models, tools = args.models.split(","), args.tools.split(",")
    rows = {name: {tool: measure(tool, name, args) for tool in tools} for name in models}
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    import torch

    print(f"check of one batch / plain forward+backward, median of {args.reps} alternating reps in one process "
          f"per cell; {args.threads} thread(s), {args.clock} clock, torch {torch.__version__}, paper nets at batch "
          f"{args.batch}")
    print(f"{'model':<16}{'plain':>9}  " + "".join(f"{t:<22}" for t in tools))
    for name, row in rows.items():
        plain = next((r["plain_s"] for r in row.values() if r and "plain_s" in r), None)
        print(f"{name:<16}{'' if plain is None else f'{plain * 1e3:.1f} ms':>9}  "
              + "".join(f"{cell(row[t]):<22}" for t in tools))
    if "gradlint" in tools:
        ours = {n: row["gradlint"]["ratio"] for n, row in rows.items() if row["gradlint"] and "ratio" in row["gradlint"]}
        small = [r for n, r in ours.items() if n in SMALL]
        large = [r for n, r in ours.items() if n not in SMALL]
        if small:
            print(f"paper nets: gradlint at most {max(small):.2f}x (target < {TARGET_SMALL:.0f}x): "
                  f"{'meets' if max(small) < TARGET_SMALL else 'misses'}")
        if large:
            print(f"larger models: gradlint at most {max(large):.2f}x (target <= {TARGET_LARGE:.1f}x): "
                  f"{'meets' if max(large) <= TARGET_LARGE else 'misses'}")


if __name__ == "__main__":
    main()
