"""`planner plan` as a user runs it: the JSON contract, what-if hardware, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def planner(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, cwd=ROOT, env=full_env, timeout=120
    )


def test_json_contract_carries_the_what_if_hardware() -> None:
    proc = planner("plan", "qwen1.5-14b-chat", "--gpu", "Tesla P4", "--ram", "8GB", "--cpu-cores", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    for key in ("source", "file", "quant", "arch", "n_layer", "n_embd", "n_head", "n_head_kv", "n_vocab",
                "context_length", "n_params", "size_bytes"):  # fmt: skip
        assert key in plan["model"]
    gpu = plan["hardware"]["gpus"][0]
    assert gpu["name"] == "Tesla P4" and gpu["compute_capability"] == "6.1"
    assert gpu["vram_bytes"] == 8 * 1024**3
    assert plan["hardware"]["memory"]["total_bytes"] == 8_000_000_000
    assert plan["hardware"]["cpu"]["physical_cores"] == 4
    assert plan["runtime"] == "llama-server"
    for key in ("n_gpu_layers", "ctx_size", "batch_size", "ubatch_size", "flash_attn", "cache_type_k", "cache_type_v",
                "threads", "parallel", "tensor_split", "n_cpu_moe"):  # fmt: skip
        assert key in plan["settings"]
    device = plan["memory"]["devices"][0]
    for key in ("name", "weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes", "total_bytes",
                "capacity_bytes"):  # fmt: skip
        assert key in device
    assert device["total_bytes"] == sum(
        device[k] for k in ("weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes", "mmproj_bytes")
    )
    for key in ("weights_bytes", "kv_cache_bytes", "compute_bytes", "output_bytes", "total_bytes", "capacity_bytes"):
        assert key in plan["memory"]["host"]
    for key in ("prompt_tokens_per_s", "generation_tokens_per_s", "low", "high", "basis"):
        assert key in plan["speed"]
    assert plan["speed"]["low"] < plan["speed"]["generation_tokens_per_s"] < plan["speed"]["high"]
    assert plan["command"][0] == "llama-server"
    assert isinstance(plan["alternatives"], list) and isinstance(plan["warnings"], list)


def test_gpu_none_puts_everything_in_host() -> None:
    proc = planner("plan", "smollm2-135m-instruct", "--gpu", "none", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["memory"]["devices"] == [] and plan["settings"]["n_gpu_layers"] == 0
    assert plan["memory"]["host"]["weights_bytes"] > 0


def test_plain_plan_without_gpu_or_network_prints_a_real_plan() -> None:
    proc = planner("plan")
    assert proc.returncode == 0, proc.stderr
    assert "llama-server" in proc.stdout and "tokens/s" in proc.stdout


def test_local_gguf_is_planned_from_its_real_header(smollm2_path: Path) -> None:
    proc = planner("plan", str(smollm2_path), "--gpu", "none", "--ram", "4GB", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["model"]["n_layer"] == 30 and plan["model"]["quant"] == "Q4_1"
    assert plan["model"]["origin"] == "gguf"
    assert str(smollm2_path) in plan["command"]


def test_nothing_fits_exits_3_with_the_closest_option() -> None:
    proc = planner("plan", "Meta-Llama-3.1-405B-Instruct-GGUF", "--gpu", "none", "--ram", "8GB", "--json")
    assert proc.returncode == 3
    plan = json.loads(proc.stdout)
    assert plan["fits"] is False and plan["speed"]["disk_bound_seconds_per_token"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "RTX 3099"], "unknown GPU 'RTX 3099'"),
        (["--ram", "lots"], "lots"),
        (["--flash-attn", "maybe"], "--flash-attn"),
        (["--cache-type-k", "q3_k"], "is not a KV cache type"),
        (["--tensor-split", "1,x"], "--tensor-split"),
        (["/nonexistent/model.gguf"], "model.gguf"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    model = [] if args[0].startswith("/") else ["qwen1.5-7b-chat"]
    proc = planner("plan", *model, *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in proc.stderr


def test_plan_for_a_saved_real_h200_profile() -> None:
    """`planner probe --save` output recorded on a real H200 drives a plan on another machine."""
    profile = ROOT / "tests" / "fixtures" / "probe-h200.json"
    proc = planner("plan", "llama-3.3-70b-instruct", "--hardware", str(profile), "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["hardware"]["gpus"][0]["name"] == "NVIDIA H200"
    assert plan["where"] == "GPU" and plan["model"]["quant"] in ("Q8_0", "F16")
    # the card's free memory as probed, less the margin
    assert plan["memory"]["devices"][0]["capacity_bytes"] < plan["hardware"]["gpus"][0]["memory_free_bytes"]


def test_margin_zero_and_the_objective_options_work_end_to_end() -> None:
    proc = planner("plan", "qwen1.5-7b-chat", "--gpu", "RTX 3090", "--ram", "32GB", "--offline", "--json",
                   "--margin", "0", "--min-speed", "20", "--min-ctx", "8192", "--prefer", "quality")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["memory"]["margin_bytes"] == 0
    assert plan["memory"]["devices"][0]["capacity_bytes"] == plan["hardware"]["gpus"][0]["memory_free_bytes"]
    assert any("as given (--margin)" in r for r in plan["reasons"])
    assert plan["settings"]["ctx_size"] >= 8192
    assert all(a["why"] for a in plan["alternatives"])
    bad = planner("plan", "qwen1.5-7b-chat", "--gpu", "RTX 3090", "--offline", "--prefer", "fastest")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("planner: error: --prefer")
