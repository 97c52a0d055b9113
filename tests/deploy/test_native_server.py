"""The real llama-server (built by scripts/build_llama_server.py) runs what planner renders.

* Every flag `llama_server_args` writes for real plans (a CPU plan, the Tesla P4 story, two GPUs, MoE expert
  offload, parallel slots, and the rarer switches) is accepted by the binary, and the server it starts has the
  planned context and slots.
* `planner deploy --launch --detach` picks the native server when llama-server is on PATH, verifies it with the
  openai client, and `planner stop` stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from llamaserver import free_port, listening, llama_server_bin, running_server  # noqa: F401 - the fixture

from planner.api import plan_request as plan_model
from planner.core.argv import llama_server_args
from planner.hardware.whatif import resolve_hardware
from planner.models.gguf_header import read_local
from planner.serving.launch import llama_server_build
from planner.serving.pipeline import expected_slot_ctx
from planner.types.plan import Overrides, Plan, PlanRequest, Settings

pytestmark = pytest.mark.slow

API_KEY = "planner-native-test-key"


def solve(model: str, gpus: list[str], ram: str = "16GB", cores: int = 2, **overrides: object) -> Plan:
    hardware = resolve_hardware(gpus, ram, cores, None)
    return plan_model(PlanRequest(model=model, hardware=hardware, overrides=Overrides(**overrides), offline=True))


def on_cpu(settings: Settings, **changes: object) -> Settings:
    """The same settings for the CPU-only binary: nothing offloaded, two threads (CI runners have two cores)."""
    return settings.model_copy(update={"n_gpu_layers": 0, "threads": 2, **changes})


def plans(smollm2: Path) -> dict[str, tuple[Settings, bool]]:
    """name -> (settings, --fit on). Every one comes from the solver; only GPU layers are taken off."""
    cpu = solve(str(smollm2), ["none"], ram="8GB").settings
    p4 = solve("qwen1.5-14b-chat", ["Tesla P4"], ram="8GB", cores=4).settings
    two = solve("qwen1.5-14b-chat", ["RTX 3090", "RTX 3060"], ram="32GB", cores=8).settings
    moe = solve("gpt-oss-20b", ["Tesla P4"], ram="32GB", cores=4).settings
    slots = solve(str(smollm2), ["none"], ram="8GB", parallel=4).settings
    # Facts the tests rely on, so a solver change that stops exercising a flag is noticed here.
    assert cpu.n_gpu_layers == 0 and p4.n_gpu_layers > 0 and p4.cache_type_v == "q8_0"
    assert two.tensor_split and len(two.tensor_split) == 2
    assert moe.n_cpu_moe > 0
    assert slots.parallel == 4 and slots.kv_unified
    return {
        "cpu-plan": (cpu, False),
        "p4-story": (on_cpu(p4), False),
        # --tensor-split and --split-mode stay: the CPU build accepts them (with a "no effect" warning)
        "two-gpus": (on_cpu(two), False),
        "moe-offload": (on_cpu(moe), False),
        "four-slots": (on_cpu(slots), False),
        # the switches no solver plan above turns on: separate KV streams, no mmap, full SWA cache, --fit on
        "other-switches": (on_cpu(slots, kv_unified=False, mmap=False, swa_full=True, flash_attn="off"), True),
        # a GPU too full to help: the plan keeps llama.cpp off it with --device none
        "gpu-off": (on_cpu(cpu, gpu_off=True), False),
    }


@pytest.fixture(scope="module")
def cases(smollm2_path: Path) -> dict[str, tuple[Settings, bool]]:
    return plans(smollm2_path)


def props(port: int) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/props", headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize(
    "name", ["cpu-plan", "p4-story", "two-gpus", "moe-offload", "four-slots", "other-switches", "gpu-off"]
)
def test_every_rendered_flag_is_accepted(
    name: str,
    cases: dict[str, tuple[Settings, bool]],
    llama_server_bin: Path,  # noqa: F811
    smollm2_path: Path,
    tmp_path: Path,
) -> None:
    settings, fit = cases[name]
    key_file = tmp_path / "api-key"
    key_file.write_text(f"# written by the test\n{API_KEY}\n")
    port = free_port()
    args = llama_server_args(
        settings, model_path=str(smollm2_path), alias="smollm2-test", host="127.0.0.1", port=port, fit=fit,
        api_key_file=str(key_file), llama_build=llama_server_build(str(llama_server_bin)),
    )  # fmt: skip
    with running_server(llama_server_bin, args, tmp_path / "server.log", port=port) as server:
        info = props(port)
        log = server.log_text()
    # The server runs the plan, not its own defaults. (Plans made for other models may ask SmolLM2 for more than
    # its 8192-token training context: llama-server allocates that KV but caps each slot at the training context.)
    assert info["total_slots"] == settings.parallel
    train_ctx = read_local(smollm2_path).metadata["llama.context_length"]
    slot_ctx = expected_slot_ctx(Plan.model_construct(settings=settings))
    assert info["default_generation_settings"]["n_ctx"] == min(slot_ctx, train_ctx)
    # Flags planner writes are current spellings: none is reported as deprecated, unknown or invalid.
    lowered = log.lower()
    for complaint in ("deprecated", "invalid argument", "unknown argument", "error while handling"):
        assert complaint not in lowered, f"{name}: llama-server said '{complaint}':\n{log[-3000:]}"


def test_llama_server_reports_its_real_build(llama_server_bin: Path) -> None:  # noqa: F811
    """The build script stamps the upstream build number, so planner picks the flags of this build."""
    build = llama_server_build(str(llama_server_bin))
    assert build is not None and build >= 10105, f"llama-server reports build {build}"
    assert "--load-mode" in llama_server_args(
        Settings(), model_path="m.gguf", alias="m", host="127.0.0.1", port=1, llama_build=build
    )


def test_cli_deploy_launches_native_llama_server_verifies_and_stops(
    llama_server_bin: Path,  # noqa: F811
    smollm2_path: Path,
    tmp_path: Path,
) -> None:
    """`planner deploy FILE --gpu none --launch --detach` with llama-server first on PATH, then `planner stop`."""
    env = {**os.environ, "PATH": f"{llama_server_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    port = free_port()
    out = tmp_path / "deploy"
    planner = [sys.executable, "-m", "planner"]
    deploy_cmd = [
        *planner, "deploy", str(smollm2_path), "--gpu", "none", "--ram", "8GB", "--cpu-cores", "2",
        "--target", "command", "--out", str(out), "--port", str(port), "--launch", "--detach", "--json",
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(deploy_cmd, capture_output=True, text=True, env=env, timeout=600)
    pid = None
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout)
        launch = report["launch"]
        pid = launch["pid"]
        assert launch["method"] == "native", launch["why"]
        assert launch["command"][0] == str(llama_server_bin)
        server = psutil.Process(pid)
        assert Path(server.exe()).resolve() == llama_server_bin.resolve()

        verification = launch["verification"]
        assert launch["verified"], verification["problems"]
        assert verification["answer"].strip()
        assert verification["model_id"] == report["alias"]
        measured = launch["measured"]
        assert measured["prompt_tokens"] > 100 and measured["prompt_tokens_per_s"] > 0
        assert measured["generation_tokens_per_s"] > 0
        assert measured["ctx_size"] == report["plan"]["settings"]["ctx_size"]
        assert verification["wrong_key_refused"] and verification["wrong_key_status"] == 401

        # The key reaches the server only through --api-key-file: not on its command line, not in its environment.
        key_file = Path(report["api_key_file"])
        key = key_file.read_text().strip()
        cmdline = server.cmdline()
        assert cmdline[cmdline.index("--api-key-file") + 1] == str(key_file)
        assert key not in " ".join(cmdline)
        assert key not in "".join(server.environ().values())
        # ... and the server honours it: the key from the file is accepted, another one refused.
        assert _status(report["endpoint"], key) == 200
        assert _status(report["endpoint"], key + "x") == 401
        conns = [c for c in server.net_connections() if c.status == psutil.CONN_LISTEN]
        assert [(c.laddr.ip, c.laddr.port) for c in conns] == [("127.0.0.1", port)]
        print(f"native deploy verified in {time.monotonic() - started:.1f} s: {launch['comparison']}")
    finally:
        stop = subprocess.run([*planner, "stop", str(out)], capture_output=True, text=True, env=env, timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    deadline = time.monotonic() + 10
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not listening(port)
    assert not (out / ".planner-state.json").exists()


def _status(endpoint: str, key: str) -> int:
    request = urllib.request.Request(f"{endpoint}/models", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
