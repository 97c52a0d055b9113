"""End to end on the CPU: download from the local hub -> launch llama-cpp-python's server -> verify -> bench -> stop."""

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
from localhub import LocalHub, local_hub  # noqa: F401 - the fixture

from planner.serving.bench import run_bench
from planner.serving.launch import stop_deployment
from planner.serving.pipeline import deploy
from planner.serving.state import load_state
from planner.types.deploy import DeployOptions

from .conftest import make_plan

REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct-Q4_1.gguf"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def hub(local_hub: LocalHub, smollm2_path: Path) -> LocalHub:  # noqa: F811
    pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] is installed by ./scripts/test")
    local_hub.add_file(REPO, FILE, smollm2_path)
    return local_hub


def test_deploy_launch_verify_bench_stop(hub: LocalHub, smollm2_path: Path, tmp_path: Path):
    plan = make_plan(smollm2_path, [], repo=REPO)
    plan.model = plan.model.model_copy(update={"file": FILE, "files": [FILE]})
    port = free_port()
    out = tmp_path / "out"
    opts = DeployOptions(
        out_dir=out, target="command", port=port, launch=True, detach=True, launch_with="embedded",
        ready_timeout_s=180,
    )  # fmt: skip
    report, launched = deploy(plan, opts)
    try:
        assert report.model.downloaded_bytes == smollm2_path.stat().st_size and report.model.verified_sha256
        launch = report.launch
        assert launch is not None and launch.method == "embedded" and launch.pid == launched.process.pid
        v = launch.verification
        assert v is not None and v.model_id == report.alias
        assert v.answer.strip(), "the streamed answer is empty"
        assert v.measured.prompt_tokens > 100  # a prompt of a few hundred tokens
        assert v.measured.prompt_tokens_per_s > 0 and v.measured.generation_tokens_per_s > 0
        assert v.wrong_key_refused and v.wrong_key_status == 401
        assert launch.verified, v.problems
        assert launch.comparison and "measured" in launch.comparison[0]
        # The key is not on the server's command line (ps shows it), only in its environment.
        key = Path(report.api_key_file).read_text().strip()
        assert key not in " ".join(psutil.Process(launch.pid).cmdline())
        # Bound to loopback only.
        conns = [c for c in psutil.Process(launch.pid).net_connections() if c.status == psutil.CONN_LISTEN]
        assert [c.laddr.ip for c in conns] == ["127.0.0.1"]

        bench = run_bench(report.endpoint, key, concurrency=2, requests=4)
        assert bench.verification.ok
        assert bench.run is not None and bench.run.succeeded == 4 and bench.run.failed == 0
        assert bench.run.generation_tokens_per_s > 0
        assert 0 < bench.run.time_to_first_token_s.p50 <= bench.run.time_to_first_token_s.p99
        assert bench.run.latency_s.p50 <= bench.run.latency_s.p90 <= bench.run.latency_s.p99
    finally:
        state = load_state(out)
        assert state is not None and state.pid == launch.pid
        _, message = stop_deployment(out)
    assert "stopped" in message
    assert not psutil.pid_exists(state.pid) or psutil.Process(state.pid).status() == psutil.STATUS_ZOMBIE
    assert load_state(out) is None and not listening(port)


def test_cli_deploy_detach_bench_stop(hub: LocalHub, tmp_path: Path):
    """The same through the `planner` command, with the solver's real plan for CPU-only what-if hardware."""
    env = {**os.environ, **hub.env(), "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_TOKEN", None)
    port = free_port()
    out = tmp_path / "deploy"
    planner = [sys.executable, "-m", "planner"]
    deploy_cmd = [
        *planner, "deploy", REPO, "--gpu", "none", "--ram", "8GB", "--cpu-cores", "2", "--target", "command",
        "--out", str(out), "--port", str(port), "--launch", "--detach", "--launch-with", "embedded", "--json",
    ]  # fmt: skip
    done = subprocess.run(deploy_cmd, capture_output=True, text=True, env=env, timeout=600)
    state = load_state(out)
    try:
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout)
        assert report["endpoint"] == f"http://127.0.0.1:{port}/v1"
        assert report["plan"]["model"]["repo"] == REPO and report["model_path"].endswith(".gguf")
        assert Path(report["api_key_file"]).stat().st_mode & 0o777 == 0o600
        launch = report["launch"]
        assert launch["method"] == "embedded" and launch["verified"] and launch["pid"] == state.pid
        assert launch["measured"]["generation_tokens_per_s"] > 0 and launch["measured"]["prompt_tokens_per_s"] > 0
        assert launch["predicted"]["generation_tokens_per_s"] > 0

        bench = subprocess.run(
            [*planner, "bench", report["endpoint"], "--api-key-file", report["api_key_file"], "-c", "1", "-n", "2",
             "--json"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert bench.returncode == 0, bench.stderr[-2000:]
        result = json.loads(bench.stdout)
        assert result["run"]["succeeded"] == 2 and result["verification"]["wrong_key_refused"]
        wrong = subprocess.run(
            [*planner, "bench", report["endpoint"], "--api-key", "not-the-key", "-n", "0", "--json"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert wrong.returncode == 1
    finally:
        stop = subprocess.run([*planner, "stop", str(out)], capture_output=True, text=True, env=env, timeout=60)
    assert stop.returncode == 0, stop.stderr
    deadline = time.monotonic() + 10
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not listening(port)


def test_ctrl_c_stops_a_foreground_deployment(smollm2_path: Path, tmp_path: Path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] is installed by ./scripts/test")
    import signal

    port = free_port()
    out = tmp_path / "fg"
    command = [
        sys.executable, "-m", "planner", "deploy", str(smollm2_path), "--gpu", "none", "--ram", "8GB",
        "--cpu-cores", "2", "--out", str(out), "--port", str(port), "--launch",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    for line in proc.stdout:
        seen += line
        if "Ctrl-C stops it" in line:
            break
    state = load_state(out)
    assert state is not None and listening(port), seen[-2000:]
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "stopped process" in rest
    assert not listening(port) and load_state(out) is None
    assert not psutil.pid_exists(state.pid) or psutil.Process(state.pid).status() == psutil.STATUS_ZOMBIE
