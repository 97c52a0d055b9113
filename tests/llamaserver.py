"""The real `llama-server` binary for tests: where scripts/build_llama_server.py put it, and running it.

    from llamaserver import llama_server_bin  # noqa: F401 - the fixture

    with running_server(llama_server_bin, args, log) as server: ...   # /health answered 200

`./scripts/test` builds the binary before pytest (not with --quick). A test that needs it fails when it is missing,
so CI never passes by silently skipping; PLANNER_SKIP_LLAMA_SERVER=1 turns that failure into a skip.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LLAMA_SERVER = Path(__file__).parent / "fixtures" / "cache" / "llama-server" / "bin" / "llama-server"
SKIP_ENV = "PLANNER_SKIP_LLAMA_SERVER"


@pytest.fixture(scope="session")
def llama_server_bin() -> Path:
    """The CPU llama-server built from the llama.cpp that llama-cpp-python vendors (same version as the venv)."""
    if LLAMA_SERVER.is_file() and os.access(LLAMA_SERVER, os.X_OK):
        return LLAMA_SERVER
    why = f"no llama-server at {LLAMA_SERVER}: build it with `python scripts/build_llama_server.py`"
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{why}; skipped because {SKIP_ENV}=1")
    pytest.fail(f"{why}, or set {SKIP_ENV}=1 to skip the tests that need it")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def health_status(port: int) -> int | None:
    """The HTTP status of GET /health (503 while the model loads), None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def log_tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path
    ready_after_s: float

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def stop(process: subprocess.Popen, timeout_s: float = 20) -> None:
    """SIGTERM the server's process group, SIGKILL it if it has not exited after `timeout_s`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def running_server(
    binary: Path, args: list[str], log: Path, *, port: int, timeout_s: float = 120, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Start `binary args` (which must listen on 127.0.0.1:port), wait for /health 200, yield, then stop it.

    Fails the test with the end of the server's log when it exits first (e.g. a flag it rejects) or never gets
    ready.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(binary), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    try:
        while True:
            if process.poll() is not None:
                code = process.returncode
                pytest.fail(f"llama-server exited with code {code} before /health answered 200:\n{log_tail(log)}")
            status = health_status(port)
            if status == 200:
                break
            if time.monotonic() - started > timeout_s:
                pytest.fail(f"llama-server not ready after {timeout_s:.0f} s (/health {status}):\n{log_tail(log)}")
            time.sleep(0.2)
        yield Server(process, port, log, time.monotonic() - started)
    finally:
        stop(process)
