"""Bounded, isolated runs: every model is analysed in a child process forked after torch is imported.

A model that hangs is stopped at ``--timeout`` and reported as not analysed, naming the step it was in
(import, construction, probe); a model whose code kills its process (a segfault, ``os.abort()``, the
kernel's out-of-memory killer) costs only its own result.  Forking after ``import torch`` costs a few
milliseconds a model instead of an ``import torch`` each (spawned processes), and the parent never runs
torch, so no thread pool is forked half-way.  A target file is first imported in a child to list its
models; each model then gets a child of its own.  Where ``os.fork`` does not exist (Windows), models
run in this process and the timeout is not enforced.
"""

from __future__ import annotations

import functools
import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from .errors import one_line

CAN_FORK = hasattr(os, "fork")
_HEADER = struct.Struct("!Q")


class Outcome:
    """What a child sent: its value, or why there is none (``failure``) and the step it was in."""

    def __init__(self, value: Any = None, failure: str | None = None, kind: str = "internal", step: str = "",
                 traceback: str | None = None):
        self.value, self.failure, self.kind, self.step, self.traceback = value, failure, kind, step, traceback

    @property
    def ok(self) -> bool:
        return self.failure is None


@functools.lru_cache(maxsize=1)
def prepare() -> None:
    """Import, in the parent, the modules every child would otherwise import again for itself: the probe
    and the rules (gradlint.api), the initial-state changes a finding may suggest (gradlint.init), and
    numpy's RNG (the probe saves and restores it).  Imports only: the parent must not run a parallel torch
    op before forking, since GNU OpenMP is not fork-safe (a child whose parent used the thread pool hangs
    in its first parallel op)."""
    from . import api  # noqa: F401
    from .init import looks_linear, orthogonal, zero_residual  # noqa: F401
    from .state import _numpy_state

    _numpy_state()


def run(job: Callable[[Callable[[str], None]], Any], timeout: float | None) -> Outcome:
    """Run ``job(step)`` in a forked child; ``step(name)`` marks the step the child is in.

    Returns the job's value, or a failure: "timeout" (stopped after ``timeout`` seconds), "crash" (the
    process died), or the exception the job raised ("internal", with its traceback).
    """
    if not CAN_FORK:
        return _in_process(job)
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the job, send messages, never return into the parent's code
        os.close(read)
        code = 0
        try:
            _send(write, ("value", job(lambda name: _send(write, ("step", name)))))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            try:
                _send(write, ("raised", one_line(exc), traceback.format_exc()))
            except BaseException:  # noqa: BLE001
                code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    os.close(write)
    return _wait(pid, read, timeout)


def _wait(pid: int, read: int, timeout: float | None) -> Outcome:
    deadline = None if timeout is None else time.monotonic() + timeout
    step, buffer, messages = "import", b"", []
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return Outcome(failure=f"did not finish within {timeout:g} s (stopped during {_step_words(step)})",
                               kind="timeout", step=step)
            ready, _, _ = select.select([read], [], [], left)
            if not ready:
                continue
            chunk = os.read(read, 1 << 20)
            if not chunk:  # the child closed the pipe: it exited, or died
                break
            buffer += chunk
            while len(buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buffer)
                if len(buffer) < _HEADER.size + size:
                    break
                message = pickle.loads(buffer[_HEADER.size:_HEADER.size + size])
                buffer = buffer[_HEADER.size + size:]
                if message[0] == "step":
                    step = message[1]
                else:
                    messages.append(message)
    finally:
        os.close(read)
    _, status = os.waitpid(pid, 0)
    for message in messages:
        if message[0] == "value":
            return Outcome(message[1], step=step)
        if message[0] == "raised":
            return Outcome(failure=message[1], step=step, traceback=message[2])
    return Outcome(failure=f"its process died ({_how(status)}) during {_step_words(step)}", kind="crash", step=step)


def _send(fd: int, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _in_process(job: Callable[[Callable[[str], None]], Any]) -> Outcome:
    step = ["import"]
    try:
        return Outcome(job(lambda name: step.__setitem__(0, name)), step=step[0])
    except Exception as exc:  # noqa: BLE001
        return Outcome(failure=one_line(exc), step=step[0], traceback=traceback.format_exc())


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"killed by {name}" + (", as the out-of-memory killer does" if number == signal.SIGKILL else "")
    return f"exit status {os.WEXITSTATUS(status)} without a result"


def _step_words(step: str) -> str:
    return {"import": "the import of its file", "construct": "the model's construction",
            "probe": "the probe"}.get(step, step)
