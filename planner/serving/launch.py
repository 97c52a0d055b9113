"""Start the planned server, and stop it again.

In order of preference: `docker compose up -d` with the rendered compose.yml when a docker engine (with the
NVIDIA runtime, for an NVIDIA plan) answers; else a native `llama-server` on PATH; else the llama-cpp-python
server embedded in this Python (`python -m llama_cpp.server`). Native servers run in their own process group
with their output in OUT_DIR/server.log.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from planner.core.argv import llama_cpp_python_args, llama_server_args
from planner.errors import BadInput, EnvironmentProblem
from planner.serving.state import clear_state, load_state, state_path
from planner.types.deploy import DeployState, Method
from planner.types.plan import Plan

LOG_FILE = "server.log"


@dataclass
class Launched:
    method: Method
    command: list[str]
    endpoint: str
    process: subprocess.Popen | None = None
    compose_project: str | None = None
    compose_file: str | None = None
    log_file: str | None = None
    reasons: list[str] = field(default_factory=list)  # why this method (and not a preferred one)
    ignored: list[str] = field(default_factory=list)  # plan knobs this server cannot honour
    started_at: float = field(default_factory=time.time)

    def alive(self) -> str | None:
        """None while the server runs; else why it stopped, with the end of its log."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"exit code {self.process.returncode}; {log_tail(self.log_file)}"

    def state(self, out_dir: Path, *, verified: bool | None = None) -> DeployState:
        pid = self.process.pid if self.process else None
        return DeployState(
            method=self.method, out_dir=str(out_dir), endpoint=self.endpoint, pid=pid,
            process_started=_create_time(pid), compose_project=self.compose_project,
            compose_file=self.compose_file, command=self.command, log_file=self.log_file, started_at=self.started_at,
            verified=verified,
        )  # fmt: skip


def log_tail(log_file: str | None, lines: int = 6) -> str:
    if not log_file or not Path(log_file).is_file():
        return "no log"
    tail = Path(log_file).read_text(errors="replace").strip().splitlines()[-lines:]
    return "last log lines: " + " | ".join(t.strip() for t in tail if t.strip())


def _create_time(pid: int | None) -> float | None:
    if pid is None:
        return None
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


# --- choosing ------------------------------------------------------------------------------------------------


def docker_engine(plan: Plan) -> tuple[bool, str]:
    """Whether `docker compose` can run the plan here, and why not."""
    if shutil.which("docker") is None:
        return False, "no docker client on PATH"
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"docker info failed: {err}"
    if out.returncode != 0:
        return False, "no docker engine answers: " + (out.stderr.strip().splitlines() or ["docker info failed"])[-1]
    needs_nvidia = any(g.vendor == "nvidia" for g in plan.hardware.gpus) and plan.settings.n_gpu_layers > 0
    if needs_nvidia:
        try:
            runtimes = json.loads(out.stdout or "{}") or {}
        except ValueError:
            runtimes = {}
        if "nvidia" not in runtimes:
            return False, "the docker engine has no nvidia runtime (install the NVIDIA Container Toolkit)"
    return True, "docker engine reachable"


def llama_server_build(binary: str) -> int | None:
    """The build number `llama-server --version` prints: "version: 6170 (4227c9be)" in older builds,
    "version: 0.5.0-dev (build 11312, commit 0c1e57098)" once llama.cpp got a version of its own (b11312 has it)."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout + out.stderr
    match = re.search(r"\(build (\d+)", text) or re.search(r"version:\s*(\d+)\s*\(", text)
    if match is None:
        return None
    # 0 is what llama.cpp reports when it was built without git history (a release tarball, an sdist): unknown,
    # not "older than every feature", so the flags of the current build are used.
    return int(match.group(1)) or None


def embedded_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise EnvironmentProblem(
                f"cannot listen on {host}:{port} ({err.strerror}); choose another --port"
            ) from None


# --- starting ------------------------------------------------------------------------------------------------


def launch(
    plan: Plan,
    *,
    out_dir: Path,
    model_path: str,
    alias: str,
    host: str,
    port: int,
    api_key: str,
    api_key_file: Path,
    endpoint: str,
    fit: bool = False,
    compose_file: Path | None = None,
    compose_project: str | None = None,
    method: str = "auto",
) -> Launched:
    """Start the server by the best available method (or the one asked for) and return its handle."""
    reasons: list[str] = []
    if method in ("auto", "docker") and compose_file is not None:
        ok, why = docker_engine(plan)
        if ok:
            return _start_compose(compose_file, compose_project or "planner", endpoint, reasons)
        if method == "docker":
            raise EnvironmentProblem(f"cannot launch with docker: {why}")
        reasons.append(f"not docker: {why}")
    elif method == "docker":
        raise BadInput("--launch-with docker needs the compose target (--target compose)")
    check_port_free(host, port)
    log = out_dir / LOG_FILE
    binary = shutil.which("llama-server")
    if method in ("auto", "native") and binary and plan.runtime != "llama-cpp-python":
        args = llama_server_args(
            plan.settings, model_path=model_path, alias=alias, host=host, port=port, fit=fit,
            api_key_file=str(api_key_file), llama_build=llama_server_build(binary),
        )  # fmt: skip
        return _start_process("native", [binary, *args], {}, log, endpoint, reasons, [])
    if method == "native":
        raise EnvironmentProblem("cannot launch natively: no llama-server on PATH")
    if method == "auto":
        reasons.append("not native: " + ("the plan is for llama-cpp-python" if binary else "no llama-server on PATH"))
    if not embedded_available():
        raise EnvironmentProblem(
            "nothing can run the server here: " + "; ".join(reasons) + "; and llama-cpp-python is not installed "
            "(pip install 'llm-planner[serve]')"
        )
    args, ignored = llama_cpp_python_args(plan.settings, model_path=model_path, alias=alias, host=host, port=port)
    command = [sys.executable, "-m", "llama_cpp.server", *args]
    return _start_process("embedded", command, {"API_KEY": api_key}, log, endpoint, reasons, ignored)


def _start_process(
    method: Method, command: list[str], extra_env: dict[str, str], log: Path, endpoint: str,
    reasons: list[str], ignored: list[str],
) -> Launched:  # fmt: skip
    env = {**os.environ, **extra_env}
    from planner.serving.files import open_for_append

    log.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_for_append(log), "ab") as out:  # a link or FIFO put at server.log is refused, not followed
        # Its own session: Ctrl-C in this terminal reaches planner, which then stops the server cleanly,
        # and `planner stop` can signal the whole group.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return Launched(method, command, endpoint, process=process, log_file=str(log), reasons=reasons, ignored=ignored)


def _start_compose(compose_file: Path, project: str, endpoint: str, reasons: list[str]) -> Launched:
    command = ["docker", "compose", "-f", str(compose_file), "-p", project, "up", "-d"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=compose_file.parent)
    if done.returncode != 0:
        raise EnvironmentProblem("docker compose up failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
    return Launched(
        "docker", command, endpoint, compose_project=project, compose_file=str(compose_file), reasons=reasons
    )


# --- stopping ------------------------------------------------------------------------------------------------


def stop_process(pid: int, started: float | None, command: list[str], *, timeout_s: float = 20) -> str:
    """SIGTERM the server's process group, then SIGKILL after `timeout_s`. Returns what happened.

    Only a process confirmed to be the server is signalled: its start time must be the recorded one (pids are
    reused) and its command line the recorded command. Without both on record nothing is signalled (BadInput).
    """
    import psutil

    if started is None or not command:
        missing = "start time" if started is None else "command line"
        raise BadInput(
            f"the record of process {pid} has no {missing}, so planner cannot confirm it is the server; "
            "nothing was signalled (stop it yourself if it is, then delete the state file)"
        )
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started) > 1:
            return f"process {pid} is no longer the server (its pid was reused); nothing stopped"
        if not _runs(proc.cmdline(), command):
            return f"process {pid} is no longer the server (it runs another command); nothing stopped"
    except psutil.NoSuchProcess:  # ZombieProcess is one: exited, not yet reaped
        return f"process {pid} had already exited"
    except psutil.AccessDenied:
        raise EnvironmentProblem(
            f"cannot read process {pid}'s command line (another user's process?), so planner cannot confirm it is "
            "the server; nothing was signalled"
        ) from None
    _signal_group(pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
        return f"stopped process {pid} (SIGTERM)"
    except psutil.TimeoutExpired:
        _signal_group(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return f"killed process {pid} (SIGKILL after {timeout_s:.0f} s without exiting on SIGTERM)"


def _runs(cmdline: list[str], command: list[str]) -> bool:
    """Whether a process with this command line runs `command`: the same arguments at the end, and the program
    itself among what comes before them (a script's interpreter, or a wrapper that exec'd a same-named binary)."""
    program, args = Path(command[0]).name, command[1:]
    if len(cmdline) <= len(args) or cmdline[len(cmdline) - len(args) :] != args:
        return False
    return any(Path(part).name == program for part in cmdline[: len(cmdline) - len(args)])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(os.getpgid(pid), sig)  # the server leads its own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop_launched(launched: Launched, *, timeout_s: float = 20) -> str:
    if launched.method == "docker":
        return compose_down(launched.compose_file, launched.compose_project)
    assert launched.process is not None
    if launched.process.poll() is not None:
        return f"process {launched.process.pid} had already exited"
    pid = launched.process.pid
    message = stop_process(pid, _create_time(pid), launched.command, timeout_s=timeout_s)
    launched.process.wait()
    return message


def compose_down(compose_file: str | None, project: str | None) -> str:
    command = ["docker", "compose", *(["-f", compose_file] if compose_file else []), "-p", project or "", "down"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise EnvironmentProblem("docker compose down failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
    return f"docker compose project {project} is down"


def stop_deployment(out_dir: Path, *, timeout_s: float = 20) -> tuple[DeployState, str]:
    """`planner stop OUT_DIR`: stop what `deploy --launch --detach` recorded there."""
    state = load_state(out_dir)
    if state is None:
        raise BadInput(f"nothing to stop: {out_dir} has no .planner-state.json (was it deployed with --detach?)")
    if state.method == "docker":
        message = compose_down(state.compose_file, state.compose_project)
    else:
        if state.pid is None:
            raise BadInput(f"{state_path(out_dir)} records no process id; nothing was signalled")
        message = stop_process(state.pid, state.process_started, state.command, timeout_s=timeout_s)
    clear_state(out_dir)
    return state, message
