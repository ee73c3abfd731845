"""Wall time of `gradlint examples/deep_mlp.py` against `python -c "import torch"`, in one run.

Prints the median of several alternating runs of each and their ratio (these machines are noisy,
so only the ratio measured in one run means anything).
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=5, help="alternating runs of each command (default 5)")
    runs = parser.parse_args().runs
    torch_cmd = [sys.executable, "-c", "import torch"]
    lint_cmd = [sys.executable, "-m", "gradlint", "examples/deep_mlp.py"]
    torch_times, lint_times = [], []
    for _ in range(runs):
        torch_times.append(timed(torch_cmd))
        lint_times.append(timed(lint_cmd))
    t, g = statistics.median(torch_times), statistics.median(lint_times)
    print(f"import torch:                  median {t:.2f} s over {runs} runs")
    print(f"gradlint examples/deep_mlp.py: median {g:.2f} s over {runs} runs")
    print(f"ratio: {g / t:.2f}x the time of importing torch; gradlint's own work ~{g - t:.2f} s")


if __name__ == "__main__":
    main()
