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

    status = Console(stderr=True).status(message)
    timer = threading.Timer(DELAY, status.start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        status.stop()
