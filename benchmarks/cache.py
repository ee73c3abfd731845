"""What the report cache (.gradlint_cache) saves: a second run of unchanged models, in one run.

Lints the shipped examples (4 models in 4 files), each call in its own process with torch's threads pinned
to 1, and prints the medians of alternating runs:
  import      `python -c "import gradlint.cli"` (no torch), and with torch (`import gradlint.cli, gradlint.api`),
              which any run that builds a model pays, cached or not
  no cache    the command line with --no-cache
  cold        an empty cache folder: every model probed, its report written
  warm        the same command again: every report from the cache
and (warm - import with torch) / models, the target being at most 0.2 s a model.  Because other processes
on a shared machine make two processes' timings drift apart, the warm run also reports from inside its own
process how long its imports took and how long the rest (listing, keys, cache reads, rules, rendering) took.
Then, in this process, what one key costs for a large model (parameter bytes hashed, graph traced).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["examples/deep_mlp.py", "examples/residual_mlp.py", "examples/small_cnn.py", "examples/tanh_mlp.py"]
PINNED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
BUDGET = 0.2   # seconds a model, beyond the import


# The command line, timing its own imports (torch's included) and the rest of the run; prints both last.
# The CPU seconds (its own and its children's) say the same without the other processes' share of the cores.
SELF_TIMED = ("import resource, sys, time\n"
              "def cpu():\n"
              "    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF), "
              "resource.getrusage(resource.RUSAGE_CHILDREN)))\n"
              "start = time.perf_counter(); import gradlint.cli, gradlint.api\n"
              "imported, used = time.perf_counter(), cpu()\n"
              "try:\n    gradlint.cli.main(sys.argv[1:], prog_name='gradlint')\nexcept SystemExit:\n    pass\n"
              "wall = time.perf_counter() - imported\n"
              "sys.stderr.write(f'@split {imported - start} {wall} {used} {cpu() - used}\\n')")


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    return time.perf_counter() - start


def split(cmd: list[str], env: dict) -> tuple[float, ...]:
    """(imports, the rest) in wall seconds, then in CPU seconds, as the process itself measured them."""
    err = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env=env).stderr
    line = next(x for x in err.splitlines() if x.startswith("@split "))
    return tuple(float(x) for x in line.split()[1:])


def commands(folder: str) -> dict[str, list[str]]:
    lint = [sys.executable, "-m", "gradlint", *TARGETS, "--threads", "1"]
    return {
        "import gradlint.cli": [sys.executable, "-c", "import gradlint.cli"],
        "import + torch": [sys.executable, "-c", "import gradlint.cli, gradlint.api"],
        "no cache": [*lint, "--no-cache"],
        "cold": [*lint, "--cache-dir", folder],
        "warm": [*lint, "--cache-dir", folder],
    }


def end_to_end(runs: int) -> None:
    env = {**os.environ, **PINNED}
    env.pop("GRADLINT_NO_CACHE", None)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(Path(tmp) / "cache")
        for _ in range(runs):
            for name, cmd in commands(folder).items():
                if name == "cold":
                    shutil.rmtree(folder, ignore_errors=True)
                times.setdefault(name, []).append(timed(cmd, env))
        entries = len(list((Path(folder) / "reports").glob("*.pickle")))
        inside = [split([sys.executable, "-c", SELF_TIMED, *commands(folder)["warm"][3:]], env) for _ in range(runs)]
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, value in med.items():
        print(f"{name:22s} median {value:6.3f} s over {runs} runs")
    n = len(TARGETS)
    per_model = (med["warm"] - med["import + torch"]) / n
    print(f"{entries} cache entries for {n} models; warm / cold = {med['warm'] / med['cold']:.2f}")
    print(f"(warm - import with torch) / models = {per_model:.3f} s a model "
          f"({'within' if per_model <= BUDGET else 'over'} the {BUDGET} s target)")
    imports, rest, imports_cpu, rest_cpu = (statistics.median(x) for x in zip(*inside))
    print(f"warm, timed inside its process: imports {imports:.3f} s, the rest {rest:.3f} s = {rest / n:.3f} s a model "
          f"({'within' if rest / n <= BUDGET else 'over'} the {BUDGET} s target; median of {runs})")
    print(f"  in CPU seconds (children included): imports {imports_cpu:.3f}, the rest {rest_cpu:.3f} = "
          f"{rest_cpu / n:.3f} a model")


def key_cost(parameters: int) -> None:
    """One key of a stack of square Linear layers holding about ``parameters`` parameters."""
    import torch
    import torch.nn as nn

    from gradlint import cache
    from gradlint.assemble import Subject
    from gradlint.inputs import ProbeInputs
    from gradlint.settings import Probe

    torch.set_num_threads(1)
    width = 4096
    model = nn.Sequential(*[nn.Linear(width, width) for _ in range(max(1, parameters // (width * width)))])
    given = ProbeInputs((torch.randn(64, width),))
    settings, subject = Probe().resolved(), Subject("large", None, None, "given")
    cache.own_code()
    start = time.perf_counter()
    digest = cache.key(model, given, subject, settings, ())
    took = time.perf_counter() - start
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"key of a {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M-parameter model ({size / 1e6:.0f} MB): "
          f"{took:.3f} s ({size / 1e6 / took:.0f} MB/s){'' if digest else ' (no key)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=5, help="alternating runs of each command (default 5)")
    parser.add_argument("--large", type=int, default=50_000_000, metavar="N",
                        help="parameters of the large model whose key is timed (default 50000000; 0: skip)")
    args = parser.parse_args()
    end_to_end(args.runs)
    if args.large:
        key_cost(args.large)


if __name__ == "__main__":
    main()
