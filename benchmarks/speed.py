"""How much does `gradlint.lint` cost next to one plain training step, and the CLI next to `import torch`?

    python benchmarks/speed.py [--reps 3] [--models mlp,cnn,transformer] [--blocks 12]
                               [--device cpu|cuda] [--threads N] [--cli-runs 5] [--json]

Three models, written here in plain torch (no torchvision), each built after ``torch.manual_seed(0)``:

  mlp          50 x (Linear(512, 512) -> BatchNorm1d -> ReLU), then Linear(512, 10); input 64 x 512
  cnn          ResNet-50-style: stem conv7x7/2 + BN + ReLU + maxpool, Bottleneck stages [3, 4, 6, 3]
               (expansion 4, widths 64/128/256/512, projection shortcuts), global average pool,
               Linear to 1000; input 16 x 3 x 224 x 224
  transformer  ``--blocks`` pre-norm blocks of width 512, 8 heads, MLP 2048 with GELU, attention written
               out (q, k, v projections, softmax(q k^T / sqrt(d)) v, output projection); input 16 x 128 x 512

For each model, in fresh subprocesses (the script re-invokes itself with the hidden ``--child`` option):

* time: one subprocess builds the model (train mode) and inputs, runs one warm-up of each call, then
  ``--reps`` repetitions of each, alternating plain and lint so that the machine's load drifts over both
  alike; the median of each is reported.  "plain" is ``y = m(x); y.backward(g)`` with ``g`` a fixed
  standard Gaussian of ``y``'s shape; "lint" is ``gradlint.lint(m, example_inputs=x)``.  Gradients are
  set to None before every call (outside the timed region), so each call starts like a fresh step.
* memory: two more subprocesses, one per call, each building the model and inputs (and importing
  gradlint), then reading the RSS, running the call once, and reading the peak.  On CPU the peak is
  VmHWM from /proc/self/status, reset just before the call (``5 > /proc/self/clear_refs``) where the
  kernel allows it, so the figure is the call's own peak RSS above the RSS just before it.  On CUDA it is
  ``torch.cuda.max_memory_allocated()`` (after ``reset_peak_memory_stats``) above
  ``memory_allocated()`` just before; timings there synchronize before reading the clock.

Then the command line: wall time of ``python -m gradlint examples/deep_mlp.py`` against
``python -c "import torch"``, median of alternating runs, timed by ``benchmarks/wall_time.py``'s
``timed`` (one untimed run of each first, which also checks that gradlint did not fail).

Threads: every measuring subprocess, the CLI runs included, uses ``--threads`` torch threads (default 1,
through ``torch.set_num_threads`` and ``OMP_NUM_THREADS``).  On a shared machine whose other load
exceeds its cores, torch's default of one thread per core makes every parallel op wait for a descheduled
thread: a 50-layer MLP step then took 1-12 s instead of 0.07 s, run to run, and the lint / plain ratio
swung from 1.6x to 8x; with one thread the same ratio held within about 12%.  ``--threads 0`` measures
with torch's default (the right choice on a quiet machine).  The "spread" column is the largest
max / min over one call's timed repetitions: far above 1.2x, the machine's load is in the figures.

Targets: lint time <= 1.0x plain, lint peak memory <= 1.0x plain, CLI <= 0.5 s beyond importing torch.
"misses by X" is how far over the target the figure is, in the target's unit.  Only ratios measured in
one run of this script mean anything: the machines are noisy and shared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import gradlint

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("mlp", "cnn", "transformer")
TARGET_TIME_RATIO = 1.0
TARGET_MEMORY_RATIO = 1.0
TARGET_CLI_SECONDS = 0.5


# ---------------------------------------------------------------- models


def deep_mlp(depth: int = 50, width: int = 512, classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU()]
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.branch = nn.Sequential(*conv_bn(cin, width, 1), nn.ReLU(),
                                    *conv_bn(width, width, 3, stride), nn.ReLU(),
                                    *conv_bn(width, cout, 1))
        self.shortcut = (nn.Sequential(*conv_bn(cin, cout, 1, stride))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return F.relu(self.branch(x) + self.shortcut(x))


class ResNet50(nn.Module):
    def __init__(self, stages=(3, 4, 6, 3), widths=(64, 128, 256, 512), classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, 64, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1))
        blocks, cin = [], 64
        for i, (n, width) in enumerate(zip(stages, widths)):
            for j in range(n):
                blocks.append(Bottleneck(cin, width, stride=2 if i > 0 and j == 0 else 1))
                cin = width * Bottleneck.expansion
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def forward(self, x):
        b, t, w = x.shape
        d = w // self.heads
        q, k, v = (proj(x).view(b, t, self.heads, d).transpose(1, 2) for proj in (self.q, self.k, self.v))
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)
        return self.out((attn @ v).transpose(1, 2).reshape(b, t, w))


class Block(nn.Module):
    def __init__(self, width: int = 512, heads: int = 8, hidden: int = 2048):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, blocks: int = 12, width: int = 512):
        super().__init__()
        self.blocks = nn.Sequential(*(Block(width) for _ in range(blocks)))
        self.norm = nn.LayerNorm(width)

    def forward(self, x):
        return self.norm(self.blocks(x))


def build(name: str, blocks: int, device: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model (train mode), its input and the fixed output gradient g, all on ``device``."""
    torch.manual_seed(0)
    if name == "mlp":
        model, x, out = deep_mlp(), torch.randn(64, 512), (64, 10)
    elif name == "cnn":
        model, x, out = ResNet50(), torch.randn(16, 3, 224, 224), (16, 1000)
    elif name == "transformer":
        model, x, out = Transformer(blocks), torch.randn(16, 128, 512), (16, 128, 512)
    else:
        raise ValueError(name)
    return model.to(device).train(), x.to(device), torch.randn(out).to(device)


# ---------------------------------------------------------------- the two calls, and measuring them


def make_call(mode: str, model: nn.Module, x: torch.Tensor, g: torch.Tensor):
    def plain():
        y = model(x)
        y.backward(g)

    def lint():
        gradlint.lint(model, example_inputs=x)

    return {"plain": plain, "lint": lint}[mode]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed_call(call, model: nn.Module, device: str) -> float:
    model.zero_grad(set_to_none=True)
    sync(device)
    start = time.perf_counter()
    call()
    sync(device)
    return time.perf_counter() - start


def proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_memory_mb(call, model: nn.Module, device: str) -> dict:
    """The call's peak memory above the memory just before it, in MB (run once, no warm-up)."""
    model.zero_grad(set_to_none=True)
    if device == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        call()
        sync(device)
        return {"peak_mb": (torch.cuda.max_memory_allocated() - before) / 2**20, "peak_reset": True}
    reset = reset_peak_rss()
    before = proc_status_kb("VmRSS")
    call()
    return {"peak_mb": (proc_status_kb("VmHWM") - before) / 1024, "peak_reset": reset}


def child(args: argparse.Namespace) -> None:
    """Runs in a fresh subprocess: prints one JSON line with the figures its ``--child`` job asks for."""
    import gradlint.api  # noqa: F401 - imported before measuring, so neither call pays for it

    if args.threads:
        torch.set_num_threads(args.threads)  # OMP_NUM_THREADS is set too, by in_subprocess
    name, job = args.child
    model, x, g = build(name, args.blocks, args.device)
    if job == "time":
        calls = {mode: make_call(mode, model, x, g) for mode in ("plain", "lint")}
        for mode in calls:  # warm-up
            timed_call(calls[mode], model, args.device)
        times: dict[str, list[float]] = {"plain": [], "lint": []}
        for _ in range(args.reps):
            for mode in calls:
                times[mode].append(timed_call(calls[mode], model, args.device))
        result = {mode: statistics.median(ts) for mode, ts in times.items()}
        result["runs"] = times
        result["threads"] = torch.get_num_threads()
    else:  # "plain" or "lint": one call's peak memory
        result = peak_memory_mb(make_call(job, model, x, g), model, args.device)
    print(json.dumps(result))


def thread_env(threads: int) -> dict:
    """The environment for a measuring subprocess: OMP_NUM_THREADS pinned unless ``threads`` is 0."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def in_subprocess(name: str, job: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", name, job, "--reps", str(args.reps),
           "--blocks", str(args.blocks), "--device", args.device, "--threads", str(args.threads)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=thread_env(args.threads))
    if done.returncode != 0:
        sys.exit(f"{name} {job} failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_model(name: str, args: argparse.Namespace) -> dict:
    t = in_subprocess(name, "time", args)
    plain_mem, lint_mem = in_subprocess(name, "plain", args), in_subprocess(name, "lint", args)
    return {
        "model": name if name != "transformer" else f"transformer ({args.blocks} blocks)",
        "plain_s": t["plain"], "lint_s": t["lint"], "time_ratio": t["lint"] / t["plain"],
        "plain_mb": plain_mem["peak_mb"], "lint_mb": lint_mem["peak_mb"],
        "memory_ratio": lint_mem["peak_mb"] / plain_mem["peak_mb"] if plain_mem["peak_mb"] > 0 else math.inf,
        "peak_reset": plain_mem["peak_reset"] and lint_mem["peak_reset"],
        "threads": t["threads"], "runs_s": t["runs"],
        "spread": max(max(ts) / min(ts) for ts in t["runs"].values()),
    }


# ---------------------------------------------------------------- the command line


def measure_cli(runs: int, threads: int) -> dict:
    """``python -m gradlint examples/deep_mlp.py`` against ``python -c "import torch"``, as wall_time.py does."""
    os.environ.update(thread_env(threads))  # wall_time's timed() runs its commands in this environment
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from wall_time import timed
    torch_cmd = [sys.executable, "-c", "import torch"]
    lint_cmd = [sys.executable, "-m", "gradlint", "examples/deep_mlp.py"]
    check = subprocess.run(lint_cmd, cwd=ROOT, capture_output=True, text=True)
    if check.returncode not in (0, 1):  # 1: findings; 2: gradlint failed
        sys.exit(f"gradlint examples/deep_mlp.py failed (exit {check.returncode}):\n{check.stderr}")
    timed(torch_cmd)
    torch_times, lint_times = [], []
    for _ in range(runs):
        torch_times.append(timed(torch_cmd))
        lint_times.append(timed(lint_cmd))
    t, g = statistics.median(torch_times), statistics.median(lint_times)
    return {"import_torch_s": t, "gradlint_s": g, "beyond_torch_s": g - t, "runs": runs,
            "import_torch_runs_s": torch_times, "gradlint_runs_s": lint_times,
            "spread": max(max(ts) / min(ts) for ts in (torch_times, lint_times))}


# ---------------------------------------------------------------- report


def verdict(value: float, target: float, unit: str) -> str:
    return "meets" if value <= target else f"misses by {value - target:.2f}{unit}"


def print_table(rows: list[dict], cli: dict | None, args: argparse.Namespace, elapsed: float) -> None:
    threads = args.threads or torch.get_num_threads()
    memory = ("peak RSS above the RSS before one call" if args.device == "cpu"
              else "peak allocated above allocated before one call")
    print(f"gradlint speed: device {args.device}, torch {torch.__version__}, {threads} thread(s), "
          f"median of {args.reps} reps after 1 warm-up; memory = {memory}")
    print(f"gradlint {gradlint.__version__} from {Path(gradlint.__file__).parent}")
    print()
    head = (f"{'model':<26}{'plain s':>9}{'lint s':>9}{'ratio':>7}  {'time (<= 1.0x)':<18}"
            f"{'plain MB':>10}{'lint MB':>10}{'ratio':>7}  {'memory (<= 1.0x)':<18}{'spread':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<26}{r['plain_s']:>9.3f}{r['lint_s']:>9.3f}{r['time_ratio']:>6.2f}x  "
              f"{verdict(r['time_ratio'], TARGET_TIME_RATIO, 'x'):<18}"
              f"{r['plain_mb']:>10.1f}{r['lint_mb']:>10.1f}{r['memory_ratio']:>6.2f}x  "
              f"{verdict(r['memory_ratio'], TARGET_MEMORY_RATIO, 'x'):<18}{r['spread']:>6.2f}x")
    if any(not r["peak_reset"] for r in rows):
        print("(the kernel did not allow resetting VmHWM: a peak below the RSS at model build is not seen)")
    if cli:
        print()
        print(f"CLI, median of {cli['runs']} alternating runs: python -c 'import torch' {cli['import_torch_s']:.2f} s, "
              f"python -m gradlint examples/deep_mlp.py {cli['gradlint_s']:.2f} s (spread {cli['spread']:.2f}x)")
        print(f"  gradlint beyond import torch: {cli['beyond_torch_s']:.2f} s  (<= {TARGET_CLI_SECONDS} s: "
              f"{verdict(cli['beyond_torch_s'], TARGET_CLI_SECONDS, ' s')})")
    print()
    print(f"whole run: {elapsed:.0f} s")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3, help="timed repetitions of each call, after one warm-up")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--blocks", type=int, default=12, help="Transformer blocks (default 12)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads in every measuring subprocess, "
                   "CLI runs included (default 1; 0: torch's own default)")
    p.add_argument("--cli-runs", type=int, default=5, help="alternating CLI runs of each (0: skip the CLI)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    p.add_argument("--child", nargs=2, metavar=("MODEL", "JOB"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device available")
    args.models = models
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    start = time.perf_counter()
    rows = [measure_model(name, args) for name in args.models]
    cli = measure_cli(args.cli_runs, args.threads) if args.cli_runs > 0 else None
    elapsed = time.perf_counter() - start
    print_table(rows, cli, args, elapsed)
    if args.json:
        print(json.dumps({"device": args.device, "reps": args.reps, "models": rows, "cli": cli,
                          "elapsed_s": elapsed}, indent=2))


if __name__ == "__main__":
    main()
