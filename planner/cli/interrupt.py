"""What Ctrl-C does: end planner at once with one line and exit 130, except where a started server must be stopped.

Python's default turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be. When that is inside
importlib's bookkeeping while a worker thread imports too (the GPU probe imports pynvml on a thread), the global
import lock stays held: the worker never finishes, and the interpreter waits for it at exit, forever. Measured
here: about one Ctrl-C in fourteen during `planner plan`'s probe hung that way. Bench has the same trouble in
plainer form: a KeyboardInterrupt makes its thread pool finish every queued request before exiting.

Nothing planner does before deploy starts a server needs cleaning up (downloads resume from their partial files),
so exiting at once is right there. `planner deploy` switches back to KeyboardInterrupt for the steps that may
leave a server running (`raise_on_interrupt`), which stop it on the way out.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

INTERRUPTED = "planner: interrupted"
EXIT_CODE = 130


def _exit_now(signum: int, frame: FrameType | None) -> None:
    try:
        sys.stderr.write(INTERRUPTED + "\n")
        sys.stderr.flush()
    finally:
        os._exit(EXIT_CODE)  # no thread joins, no atexit: nothing left to wait on forever


def exit_on_interrupt() -> None:
    """From now on Ctrl-C exits at once. A SIGINT that is ignored (nohup, a background job) stays ignored."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _exit_now)


@contextmanager
def raise_on_interrupt() -> Iterator[None]:
    """Within the block Ctrl-C raises KeyboardInterrupt again, so `finally` clauses can stop what was started."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not _exit_now:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
