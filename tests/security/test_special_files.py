"""FIFOs, sockets and devices where planner expects a model file (issue #16, Medium 5): refused, never opened.

Before the fix a FIFO named x.gguf (alone, or as one shard of a split set) blocked `plan` forever in open().
Every case runs the real CLI in a subprocess with a timeout, so a hang fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ggufgen import write_model, write_split_model

from planner.errors import BadInput
from planner.models.gguf_header import open_regular_file, read_local

ROOT = Path(__file__).resolve().parent.parent.parent
HANG_S = 30  # far above the second these take; a blocked open() would wait forever


def planner(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "PYTHONPATH": str(ROOT)}
    env.pop("PLANNER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=HANG_S
    )


def assert_one_error(proc: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-400:], proc.stderr[-800:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error: "), proc.stderr
    assert message in lines[0], lines[0]


def test_a_fifo_named_like_a_model_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "x.gguf"
    os.mkfifo(fifo)
    assert_one_error(planner("plan", str(fifo), "--gpu", "RTX 3090"), 2, "is a FIFO (named pipe), not a regular file")
    assert_one_error(planner("doctor", str(fifo), "--gpu", "RTX 3090"), 2, "is a FIFO")


def test_a_fifo_as_one_shard_of_a_split_set_is_refused(tmp_path: Path) -> None:
    parts = write_split_model(tmp_path, 3, "llama", name="tiny-Q8_0", wtype="Q8_0")
    parts[1].unlink()
    os.mkfifo(parts[1])
    assert_one_error(planner("plan", str(parts[0]), "--gpu", "RTX 3090"), 2, f"{parts[1].name} is a FIFO")


def test_a_link_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.gguf"
    link.symlink_to("/dev/zero")
    assert_one_error(planner("plan", str(link), "--gpu", "RTX 3090"), 2, "is a character device, not a regular file")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.gguf"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert_one_error(planner("plan", str(path), "--gpu", "RTX 3090"), 2, "is a socket, not a regular file")


def test_a_folder_of_models_skips_a_fifo_and_plans_the_model(tmp_path: Path) -> None:
    """Listing a folder stats its entries: a FIFO beside a real model is no candidate and is never opened."""
    write_model(tmp_path / "tiny-Q8_0.gguf", "llama", wtype="Q8_0")
    os.mkfifo(tmp_path / "pipe-Q4_0.gguf")
    proc = planner("plan", str(tmp_path), "--gpu", "RTX 3090", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Q8_0" in proc.stdout and "pipe" not in proc.stdout


def test_the_reader_never_blocks_on_a_fifo(tmp_path: Path) -> None:
    """The library call itself, in a thread with a deadline: refused with BadInput, the FIFO never opened."""
    fifo = tmp_path / "x.gguf"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_local(fifo)
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - whatever it is, the test reports it
            outcome.append(err)

    worker = threading.Thread(target=read, daemon=True)
    start = time.monotonic()
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock the open() so the thread ends, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("read_local blocked on a FIFO")
    assert isinstance(outcome[0], BadInput) and "FIFO" in outcome[0].message
    assert time.monotonic() - start < 2
    with pytest.raises(BadInput, match="is a FIFO"):
        open_regular_file(fifo)
