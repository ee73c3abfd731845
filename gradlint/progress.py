"""Progress on stderr for steps that take over a second, and only when stderr is a terminal (rich).

Nothing is shown in pipes, CI logs or pre-commit output, and stdout is never touched.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

DELAY = 1.0   # seconds a step runs before its spinner appears


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.live import Live
    from rich.spinner import Spinner

    # No redirection of stdout or stderr: gradlint redirects the model code's prints itself, and two
    # redirections restored out of order would send the report to stderr.
    live = Live(Spinner("dots", text=message), console=Console(stderr=True), transient=True,
                redirect_stdout=False, redirect_stderr=False)
    timer = threading.Timer(DELAY, live.start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        live.stop()
