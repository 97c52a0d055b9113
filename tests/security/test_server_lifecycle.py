"""What `deploy --launch` leaves running, and what `planner stop` may signal.

The server is a real process: tests/hostile_server.py installed as `llama-server` on PATH (a Python script that
takes llama-server's flags and answers as the mode in $HOSTILE_MODE says). planner launches it natively, as it would
a real llama-server, so its state file, process group and stop path are the real ones.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from planner.serving.state import load_state, save_state
from planner.types.deploy import DeployState

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(condition, timeout_s: float = 20) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def fake_llama_server(tmp_path: Path) -> Path:
    """A folder with `llama-server` in it: the hostile server, run by this Python."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "llama-server"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        "from hostile_server import main\nmain(sys.argv[1:])\n"
    )
    script.chmod(0o755)
    return bin_dir


def planner_env(bin_dir: Path, mode: str, tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOSTILE_MODE": mode, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HOME"] = str(tmp_path / "hf")
    return env


def deploy_args(model: Path, out: Path, port: int, ready_timeout: float) -> list[str]:
    return [
        sys.executable, "-m", "planner", "deploy", str(model), "--gpu", "none", "--ram", "8GB", "--cpu-cores", "2",
        "--target", "command", "--out", str(out), "--port", str(port), "--launch", "--detach",
        "--launch-with", "native", "--ready-timeout", str(ready_timeout),
    ]  # fmt: skip


def stop(out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "planner", "stop", str(out), "--timeout", "5"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_a_detached_server_that_fails_verification_is_stopped(
    fake_llama_server: Path, smollm2_path: Path, tmp_path: Path
) -> None:
    env = planner_env(fake_llama_server, "empty_models", tmp_path)
    port, out = free_port(), tmp_path / "out"
    done = subprocess.run(
        [*deploy_args(smollm2_path, out, port, 30), "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.splitlines() == [
        "planner: error: verification failed: the server lists no models; the server was stopped"
    ]
    launch = json.loads(done.stdout)["launch"]
    assert launch["method"] == "native" and not launch["verified"] and not launch["detached"]
    assert launch["stopped"].startswith(f"stopped process {launch['pid']}")
    assert gone(launch["pid"]) and not listening(port)
    assert load_state(out) is None  # nothing left for `planner stop` to find, because nothing is running


def test_a_stalled_answer_during_launch_ends_by_the_ready_timeout(
    fake_llama_server: Path, smollm2_path: Path, tmp_path: Path
) -> None:
    """Before, the streamed answer of a server that stalled after its headers kept --launch waiting 600 s."""
    env = planner_env(fake_llama_server, "stall_stream", tmp_path)
    port, out = free_port(), tmp_path / "out"
    started = time.monotonic()
    done = subprocess.run(deploy_args(smollm2_path, out, port, 3), capture_output=True, text=True, env=env, timeout=120)
    wall = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-2000:]
    [line] = done.stderr.splitlines()
    assert line.startswith("planner: error: verification failed: the streamed answer: no complete answer within 3 s")
    assert wall < 3 + 8, f"{wall:.1f} s"  # + the planner process's own start and the fake server's
    assert not listening(port) and load_state(out) is None


def test_a_server_orphaned_while_loading_is_found_and_stopped(
    fake_llama_server: Path, smollm2_path: Path, tmp_path: Path
) -> None:
    """planner killed (SIGKILL: no cleanup at all) while it waits for readiness: the state file is already there."""
    env = planner_env(fake_llama_server, "never_ready", tmp_path)
    port, out = free_port(), tmp_path / "out"
    deploying = subprocess.Popen(
        deploy_args(smollm2_path, out, port, 120), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        assert wait_until(lambda: listening(port), 60), "the server never listened"
        state = load_state(out)
        assert state is not None and state.pid and state.process_started and state.verified is None
        assert state.command[0] == str(fake_llama_server / "llama-server")
    finally:
        deploying.kill()
        deploying.wait()
    assert not gone(state.pid) and listening(port)  # orphaned: still running after planner died
    stopped = stop(out, env)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"stopped process {state.pid} (SIGTERM)"
    assert wait_until(lambda: gone(state.pid), 10) and not listening(port)
    assert load_state(out) is None


def sleeper() -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"], start_new_session=True)
    assert wait_until(lambda: len(psutil.Process(proc.pid).cmdline()) == 3, 10)
    return proc


@pytest.mark.parametrize("missing", ["process_started", "command"])
def test_stop_never_signals_a_process_it_cannot_confirm(missing: str, tmp_path: Path) -> None:
    """A state file without the start time (or the command line) used to get the pid signalled, whatever it was."""
    proc = sleeper()
    try:
        record = {"process_started": psutil.Process(proc.pid).create_time(), "command": proc.args}
        record[missing] = None if missing == "process_started" else []
        save_state(DeployState(method="native", out_dir=str(tmp_path), endpoint="http://127.0.0.1:1/v1",
                               pid=proc.pid, started_at=time.time(), **record))  # fmt: skip
        done = stop(tmp_path, {**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 2 and done.stdout == "", done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith("planner: error: ") and "cannot confirm it is the server" in line
        assert "nothing was signalled" in line and str(proc.pid) in line
        time.sleep(0.3)
        assert proc.poll() is None  # untouched
        assert load_state(tmp_path) is not None  # kept: planner did not stop anything
    finally:
        proc.kill()
        proc.wait()


def test_stop_leaves_a_process_running_another_command_alone(tmp_path: Path) -> None:
    """Same pid and start time, but not the recorded command: not the server."""
    proc = sleeper()
    try:
        save_state(DeployState(
            method="native", out_dir=str(tmp_path), endpoint="http://127.0.0.1:1/v1", pid=proc.pid,
            process_started=psutil.Process(proc.pid).create_time(), started_at=time.time(),
            command=["/usr/local/bin/llama-server", "--port", "8080"],
        ))  # fmt: skip
        done = stop(tmp_path, {**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr
        assert (
            done.stdout.strip()
            == f"process {proc.pid} is no longer the server (it runs another command); nothing stopped"
        )
        time.sleep(0.3)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_verified_detached_server_is_recorded_as_verified_and_stops(
    fake_llama_server: Path, smollm2_path: Path, tmp_path: Path
) -> None:
    env = planner_env(fake_llama_server, "ok", tmp_path)
    port, out = free_port(), tmp_path / "out"
    done = subprocess.run(
        [*deploy_args(smollm2_path, out, port, 30), "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    launch = json.loads(done.stdout)["launch"]
    assert launch["verified"] and launch["detached"] and launch["stopped"] is None
    state = load_state(out)
    assert state is not None and state.verified is True and state.pid == launch["pid"] and listening(port)
    stopped = stop(out, env)
    assert stopped.returncode == 0 and "SIGTERM" in stopped.stdout, stopped.stderr
    assert wait_until(lambda: gone(state.pid), 10) and not listening(port)
