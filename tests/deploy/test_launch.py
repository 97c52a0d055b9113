"""Stopping recorded servers (real processes), the launch preconditions, the bench statistics, CLI input errors."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from planner.errors import BadInput, EnvironmentProblem
from planner.serving.bench import percentile
from planner.serving.launch import check_port_free, docker_engine, stop_deployment
from planner.serving.state import load_state, save_state
from planner.types.deploy import DeployState

from .conftest import make_plan

SLEEPER = "import time\nwhile True: time.sleep(1)"
STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(1)"


def spawn(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    time.sleep(0.3)  # let it install its signal handler
    return proc


def record(out: Path, proc: subprocess.Popen, started: float | None = None) -> None:
    created = psutil.Process(proc.pid).create_time() if started is None else started
    save_state(DeployState(method="embedded", out_dir=str(out), endpoint="http://127.0.0.1:1/v1", pid=proc.pid,
                           process_started=created, command=proc.args, started_at=time.time()))  # fmt: skip


def test_stop_terminates_the_recorded_server_and_forgets_it(tmp_path: Path):
    proc = spawn(SLEEPER)
    record(tmp_path, proc)
    state, message = stop_deployment(tmp_path, timeout_s=10)
    assert "SIGTERM" in message and state.pid == proc.pid
    assert not psutil.pid_exists(proc.pid)  # stop waited for it (and reaped it)
    assert load_state(tmp_path) is None


def test_stop_escalates_to_sigkill(tmp_path: Path):
    proc = spawn(STUBBORN)
    record(tmp_path, proc)
    _, message = stop_deployment(tmp_path, timeout_s=1)
    assert "SIGKILL" in message
    assert not psutil.pid_exists(proc.pid)


def test_a_recycled_pid_is_never_signalled(tmp_path: Path):
    proc = spawn(SLEEPER)
    try:
        record(tmp_path, proc, started=psutil.Process(proc.pid).create_time() - 3600)
        _, message = stop_deployment(tmp_path)
        assert "no longer the server" in message
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_stop_without_a_deployment_is_bad_input(tmp_path: Path):
    with pytest.raises(BadInput, match="nothing to stop"):
        stop_deployment(tmp_path)


def test_a_busy_port_is_refused_before_launch():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(EnvironmentProblem, match=f"127.0.0.1:{port}.*--port"):
            check_port_free("127.0.0.1", port)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_docker_without_an_engine_is_not_chosen(smollm2_path: Path):
    ok, why = docker_engine(make_plan(smollm2_path, []))
    running = subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    assert ok == running
    if not ok:
        assert why and "\n" not in why


def test_percentiles_match_numpy():
    values = [0.31, 0.12, 0.5, 0.27, 0.9, 0.44, 0.05]
    for q in (0, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([2.0], 99) == 2.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["deploy", "x/y", "--target", "helm"], "--target 'helm'"),
        (["deploy", "x/y", "--detach"], "--detach needs --launch"),
        (["deploy", "x/y", "--launch-with", "podman"], "--launch-with"),
        (["bench", "ftp://host/v1", "-n", "0"], "not an http(s) URL"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr
