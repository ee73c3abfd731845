"""What running each model in its own forked child costs (gradlint.isolate), in one run.

Lints the shipped examples (4 models in 4 files) three ways and prints the medians of alternating runs:
  fork        the command line as it is: a child forked per file listing and per model
  in-process  the same command line with forking turned off (isolate.CAN_FORK = False)
  spawn       what a fresh interpreter per model would cost at least: `import torch; import gradlint.api`
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["examples/deep_mlp.py", "examples/residual_mlp.py", "examples/small_cnn.py", "examples/tanh_mlp.py"]
NO_FORK = ("import sys, gradlint.isolate as i; i.CAN_FORK = False; from gradlint.cli import main; "
           "main(sys.argv[1:], prog_name='gradlint')")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def models() -> int:
    out = subprocess.run([sys.executable, "-m", "gradlint", *TARGETS, "--format", "json"], cwd=ROOT,
                         capture_output=True, text=True)
    import json

    return len(json.loads(out.stdout)["results"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=5, help="alternating runs of each command (default 5)")
    runs = parser.parse_args().runs
    commands = {
        "fork": [sys.executable, "-m", "gradlint", *TARGETS],
        "in-process": [sys.executable, "-c", NO_FORK, *TARGETS],
        "spawn (one interpreter)": [sys.executable, "-c", "import torch, gradlint.api"],
    }
    times = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(timed(cmd))
    n = models()
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, value in med.items():
        print(f"{name:24s} median {value:6.2f} s over {runs} runs")
    per_child = (med["fork"] - med["in-process"]) / (n + len(TARGETS))
    print(f"{n} models in {len(TARGETS)} files: fork / in-process = {med['fork'] / med['in-process']:.2f}; "
          f"~{per_child * 1000:.0f} ms per forked child ({n + len(TARGETS)} children)")
    print(f"a spawned interpreter per model would add at least {med['spawn (one interpreter)']:.2f} s each "
          f"({n * med['spawn (one interpreter)']:.1f} s for these {n} models)")


if __name__ == "__main__":
    main()
