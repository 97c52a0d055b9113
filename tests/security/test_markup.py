"""Text from outside is printed as it is, never as rich markup, by the real CLI.

Before: a model answer with "[/INST]" crashed `bench` and `deploy --launch` right after verification passed (and
a foreground deploy then stopped its healthy server), a path with "[/]" crashed `plan` and `deploy`, "[wip]" in a
path vanished from the display, and a GPU named "[/]" in a --hardware profile crashed `plan`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .hostile_openai import MARKUP_ANSWER, HostileServer

ROOT = Path(__file__).resolve().parent.parent.parent
HOSTILE = Path(__file__).with_name("hostile_openai.py")
MARKUP = "[/] [wip] [bold]x[/bold] :smile: [/]"


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("PLANNER_DEBUG", None)
    return env | extra


def planner(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "planner", *args],
        capture_output=True, text=True, env=env or cli_env(), timeout=timeout, cwd=ROOT,
    )  # fmt: skip


def assert_clean(proc: subprocess.CompletedProcess[str], code: int = 0) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ggufgen import write_model

    return write_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf", zeros=True)


def model_at(folder: Path, name: str, source: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(source.read_bytes())
    return folder / name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status
    except OSError:
        return None


# --- bench: a hostile server's words ------------------------------------------------------------------------------


def test_bench_prints_a_markup_answer_and_model_id_literally():
    server = HostileServer(api_key="k", model_id="hostile[/]").start()
    try:
        proc = planner("bench", server.url, "--api-key", "k", "-n", "2", "--timeout", "10")
    finally:
        server.close()
    assert_clean(proc)
    assert repr(MARKUP_ANSWER) in proc.stdout  # the whole answer, brackets and :smile: included
    assert "model 'hostile[/]'" in proc.stdout
    assert "verification OK" in proc.stdout and "2 succeeded, 0 failed" in proc.stdout


def test_bench_prints_a_failed_request_literally():
    server = HostileServer(api_key="k", fail_every=2, failure="[/] broke [red]here").start()
    try:
        proc = planner("bench", server.url, "--api-key", "k", "-n", "2", "--timeout", "10")
    finally:
        server.close()
    assert_clean(proc, code=1)  # a failed request fails the bench, with no internal error on the way
    assert "[/] broke [red]here" in proc.stdout


# --- plan and deploy: paths and GPU names --------------------------------------------------------------------------


def test_plan_shows_a_path_with_markup_as_it_is(tiny_gguf: Path, tmp_path: Path):
    model = model_at(tmp_path / "x[" / "]y [wip]", "m[bold].gguf", tiny_gguf)  # ".../x[/]y [wip]/m[bold].gguf"
    proc = planner("plan", str(model), "--gpu", "Tesla P4")
    assert_clean(proc)
    assert f"─ m[bold] · F16 · {model} " in proc.stdout  # the panel's title (name, quant, file): markup kept
    assert f"--model '{model}'" in proc.stdout  # the command line


def test_plan_shows_a_gpu_name_with_markup_as_it_is(tiny_gguf: Path, tmp_path: Path):
    profile = json.loads((ROOT / "tests" / "fixtures" / "probe-h200.json").read_text())
    profile["gpus"][0]["name"] = f"NVIDIA H200 {MARKUP}"
    (tmp_path / "hw.json").write_text(json.dumps(profile))
    proc = planner("plan", str(tiny_gguf), "--hardware", str(tmp_path / "hw.json"))
    assert_clean(proc)
    assert f"GPU0 NVIDIA H200 {MARKUP} (" in proc.stdout  # the device row
    assert f"basis: NVIDIA H200 {MARKUP}: " in proc.stdout  # the speed's basis names the GPU too


def test_doctor_shows_a_gpu_name_with_markup_as_it_is(tiny_gguf: Path, tmp_path: Path):
    profile = json.loads((ROOT / "tests" / "fixtures" / "probe-h200.json").read_text())
    profile["gpus"][0]["name"] = f"NVIDIA H200 {MARKUP}"
    (tmp_path / "hw.json").write_text(json.dumps(profile))
    proc = planner("doctor", str(tiny_gguf), "--hardware", str(tmp_path / "hw.json"))
    assert_clean(proc)
    assert f"saved profile: NVIDIA H200 {MARKUP}; model" in proc.stdout  # the header (":smile:" not an emoji)
    assert f"(NVIDIA H200 {MARKUP}) is passively cooled" in proc.stdout  # a finding's title


def test_the_machine_view_shows_names_and_paths_as_they_are():
    from rich.console import Console

    from planner.rendering.hardware import render_hardware
    from planner.types.hardware import Hardware

    hardware = Hardware.model_validate_json((ROOT / "tests" / "fixtures" / "probe-h200.json").read_text())
    hardware.cpu.model = f"CPU {MARKUP}"
    hardware.disk.path = f"/srv/{MARKUP}"
    console = Console(record=True, width=300)
    console.print(render_hardware(hardware))
    text = console.export_text()
    assert f"CPU {MARKUP} (" in text and f"at /srv/{MARKUP} (models)" in text


def test_deploy_shows_paths_with_markup_as_they_are(tiny_gguf: Path, tmp_path: Path):
    model = model_at(tmp_path / "models [wip]", "m[red].gguf", tiny_gguf)
    out = tmp_path / "out [wip] a[" / "]b"  # ".../out [wip] a[/]b"
    proc = planner("deploy", str(model), "--gpu", "Tesla P4", "--out", str(out), "--target", "command")
    assert_clean(proc)
    assert f"model    {model}" in proc.stdout and f"files    {out} (command)" in proc.stdout
    assert f"{out}/command.sh" in proc.stdout


# --- deploy --launch: the answer of the server it started -------------------------------------------------------


@pytest.fixture
def shim_path(tmp_path: Path) -> str:
    """PATH with a `llama-server` that runs the hostile server (with llama-server's flags) first on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "llama-server"
    # A Python script named llama-server (not a shell wrapper exec'ing python): `planner stop` signals only a
    # process whose command line shows the program it started.
    shim.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(HOSTILE)!r}, run_name='__main__')\n")
    shim.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def test_deploy_launch_detach_shows_the_answer_and_leaves_the_server_running(
    tiny_gguf: Path, tmp_path: Path, shim_path: str
):
    port, out = free_port(), tmp_path / "out [wip]"
    args = ["deploy", str(tiny_gguf), "--gpu", "Tesla P4", "--out", str(out), "--target", "command", "--port",
            str(port), "--launch", "--launch-with", "native", "--detach", "--ready-timeout", "30"]  # fmt: skip
    proc = planner(*args, env=cli_env(PATH=shim_path))
    try:
        assert_clean(proc)
        assert repr(MARKUP_ANSWER) in proc.stdout and "verification OK" in proc.stdout
        assert f"planner stop {out}" in proc.stdout
        assert health(port) == 200  # verified, detached: still serving
    finally:
        stopped = planner("stop", str(out), env=cli_env(PATH=shim_path))
    assert_clean(stopped)
    assert health(port) is None


def test_a_foreground_deploy_keeps_serving_after_a_markup_answer(tiny_gguf: Path, tmp_path: Path, shim_path: str):
    port, out = free_port(), tmp_path / "out"
    args = ["deploy", str(tiny_gguf), "--gpu", "Tesla P4", "--out", str(out), "--target", "command", "--port",
            str(port), "--launch", "--launch-with", "native", "--ready-timeout", "30"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "planner", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(PATH=shim_path), cwd=ROOT,
    )  # fmt: skip
    try:
        seen = _read_until(proc, "Ctrl-C stops it.", deadline=time.monotonic() + 90)
        assert repr(MARKUP_ANSWER) in seen, seen
        time.sleep(1)  # a crash after the banner would stop the server within this second
        assert proc.poll() is None and health(port) == 200
        proc.send_signal(signal.SIGTERM)  # as a container stop or systemd does: planner stops the server cleanly
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "internal error" not in err and health(port) is None


def _read_until(proc: subprocess.Popen[str], marker: str, *, deadline: float) -> str:
    """stdout up to the line holding `marker`, bounded by `deadline`. A thread reads the lines: select() on the
    pipe would miss lines already pulled into the text wrapper's buffer and wait for output that never comes."""
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    stderr = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
    raise AssertionError(f"no {marker!r} in time: {''.join(seen)[-2000:]} {stderr[-2000:]}")
