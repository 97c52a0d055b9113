"""The memory estimate against llama.cpp's real buffers, and the placement rules it encodes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ggufgen import write_model

from planner.core.llamacpp_log import offloaded_layers, parse_buffers
from planner.core.memory import (
    estimate_memory,
    geometry,
    kv_bytes_per_token,
    place_units,
    swa_cells,
)
from planner.models.gguf_header import facts_from_headers, read_local
from planner.types.hardware import Gpu
from planner.types.model import ModelFacts
from planner.types.plan import Settings

MiB = 1024 * 1024
H200 = Path(__file__).resolve().parent.parent / "fixtures" / "cuda-buffers" / "h200"
PROBE_H200 = Path(__file__).resolve().parent.parent / "fixtures" / "probe-h200.json"


def settings_from_args(args: list[str]) -> Settings:
    opts = dict(zip(args[::2], args[1::2]))
    return Settings(
        n_gpu_layers=int(opts["-ngl"]),
        ctx_size=int(opts["-c"]),
        batch_size=int(opts["-b"]),
        ubatch_size=int(opts["-ub"]),
        flash_attn=opts["-fa"],
        cache_type_k=opts.get("-ctk", "f16"),
        cache_type_v=opts.get("-ctv", "f16"),
        parallel=int(opts["-np"]),
        kv_unified=False,  # an explicit -np without --kv-unified: one stream per slot
        n_cpu_moe=int(opts.get("--n-cpu-moe", 0)),
    )


H200_RUNS = json.loads((H200 / "runs.json").read_text())


@pytest.mark.parametrize("run", H200_RUNS, ids=[r["run"] for r in H200_RUNS])
def test_estimate_matches_llama_server_cuda_buffers_on_h200(run: dict) -> None:
    """Recorded on a real H200 with llama-server -lv 4 --fit off (bench/device_cuda_run.sh)."""
    log = (H200 / f"{run['run']}.log").read_text()
    actual = parse_buffers(log)
    facts = ModelFacts.model_validate_json((H200 / "facts" / f"{run['model']}.json").read_text())
    gpu = Gpu.model_validate(json.loads(PROBE_H200.read_text())["gpus"][0])
    settings = settings_from_args(run["args"])
    est = estimate_memory(facts, settings, [gpu], "llama-server")
    dev = est.devices[0]

    assert offloaded_layers(log) == (min(settings.n_gpu_layers, facts.n_layer + 1), facts.n_layer + 1)
    assert dev.weights_bytes / MiB == pytest.approx(actual["model_gpu"], abs=0.05)
    assert dev.kv_cache_bytes / MiB == pytest.approx(actual["kv_gpu"], abs=0.01)
    assert est.host.compute_bytes / MiB == pytest.approx(actual["compute_host"], rel=0.01)
    assert dev.compute_bytes / MiB == pytest.approx(actual["compute_gpu"], rel=0.01)
    # what nvidia-smi says the process really used after a 3500-token prompt: never more than planned
    used = run["process_used_mib_after_prompt"]
    assert used <= dev.total_bytes / MiB <= used * 1.12


def test_output_layer_is_offloaded_first() -> None:
    """llama.cpp >= b7467: -ngl N puts the output layer and the last N-1 blocks on the GPU."""
    assert place_units(4, 0, [1.0]) == [None] * 5
    assert place_units(4, 1, [1.0]) == [None, None, None, None, 0]
    assert place_units(4, 3, [1.0]) == [None, None, 0, 0, 0]
    assert place_units(4, 99, [1.0]) == [0] * 5


def test_tensor_split_fills_devices_in_order_and_the_last_takes_the_output() -> None:
    placement = place_units(7, 8, [3.0, 1.0])
    assert placement == [0, 0, 0, 0, 0, 0, 1, 1]
    assert placement[-1] == 1


def test_kv_cache_per_token_for_llama3_8b_shape() -> None:
    """Llama-3-8B: 32 layers x 8 KV heads x 128: 128 KiB per token in f16 (1024 MiB at 8192, as logged)."""
    facts = ModelFacts(
        arch="llama", n_layer=32, n_embd=4096, n_head=32, n_head_kv=8, head_dim_k=128, head_dim_v=128,
        n_vocab=128256, context_length=8192,
    )  # fmt: skip
    assert kv_bytes_per_token(facts) == 128 * 1024
    assert kv_bytes_per_token(facts, "q8_0", "q8_0") == 128 * 1024 * 34 // 64


def test_sliding_window_cells_follow_llama_cpp() -> None:
    facts = ModelFacts(
        arch="gemma2", n_layer=4, n_embd=256, n_head=4, n_head_kv=2, head_dim_k=64, head_dim_v=64, n_vocab=1000,
        context_length=16384, sliding_window=1024, swa_layers=[True, False, True, False],
    )  # fmt: skip
    server = Settings(ctx_size=16384, ubatch_size=512, parallel=1)
    assert swa_cells(facts, server, geometry(server, "llama-server")) == 1536  # as the H200 log shows
    library = Settings(ctx_size=16384, ubatch_size=512, swa_full=True)
    assert swa_cells(facts, library, geometry(library, "llama-cpp-python")) == 16384


def test_n_cpu_moe_moves_expert_bytes_to_the_host() -> None:
    facts = ModelFacts.model_validate_json((H200 / "facts" / "llama-moe.json").read_text())
    gpu = Gpu(name="RTX 3090", compute_capability="8.6", memory_total_bytes=24 * 1024**3)
    full = estimate_memory(facts, Settings(n_gpu_layers=99, ctx_size=4096, flash_attn="on"), [gpu])
    moe = estimate_memory(facts, Settings(n_gpu_layers=99, ctx_size=4096, flash_attn="on", n_cpu_moe=4), [gpu])
    moved = sum(facts.layer_expert_bytes[:4])
    assert full.devices[0].weights_bytes - moe.devices[0].weights_bytes == moved
    assert moe.host.weights_bytes - full.host.weights_bytes == moved


def test_cpu_only_puts_everything_on_the_host(smollm2_path: Path) -> None:
    facts = facts_from_headers([read_local(smollm2_path)], source="s", files=["s"])
    est = estimate_memory(facts, Settings(ctx_size=2048), [], "llama-server")
    assert est.devices == []
    assert est.host.weights_bytes == facts.size_bytes
    assert est.host.kv_cache_bytes == 2048 * kv_bytes_per_token(facts)


LOADER = """
import sys
from llama_cpp import Llama
path, ctx, ub, fa, tk = sys.argv[1:6]
Llama(path, n_ctx=int(ctx), n_batch=int(ub), n_ubatch=int(ub), n_threads=2, verbose=True,
      flash_attn=fa == "on", type_k=int(tk), type_v=int(tk), n_gpu_layers=0)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "ctx", "ubatch", "fa", "kv"),
    [
        ("smollm2", 4096, 512, "on", "f16"),
        ("smollm2", 2048, 256, "on", "q8_0"),  # a quantized V cache needs flash attention
        ("llama", 2048, 512, "off", "f16"),
        ("gemma2", 4096, 512, "on", "f16"),
    ],
)
def test_estimate_matches_llama_cpp_cpu_buffers(
    smollm2_path: Path, tmp_path: Path, model: str, ctx: int, ubatch: int, fa: str, kv: str
) -> None:
    """Real llama.cpp (llama-cpp-python's vendored build) on the CPU: weights and KV exact, total within 3 %."""
    pytest.importorskip("llama_cpp")
    if model == "smollm2":
        path = smollm2_path
    else:
        path = write_model(tmp_path / f"{model}.gguf", arch=model, n_layer=4, n_embd=256, n_head=4, n_head_kv=2,
                           n_ff=512, n_vocab=2000)  # fmt: skip
    type_id = {"f16": 1, "q8_0": 8}[kv]
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, str(path), str(ctx), str(ubatch), fa, str(type_id)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    actual = parse_buffers(proc.stderr)
    facts = facts_from_headers([read_local(path)], source=path.name, files=[path.name])
    settings = Settings(
        ctx_size=ctx, batch_size=ubatch, ubatch_size=ubatch, flash_attn=fa, cache_type_k=kv, cache_type_v=kv,
        kv_unified=False, swa_full=True,
    )  # fmt: skip
    est = estimate_memory(facts, settings, [], "llama-cpp-python").host
    assert est.weights_bytes / MiB == pytest.approx(actual["model_host"], abs=0.05)
    assert est.kv_cache_bytes / MiB == pytest.approx(actual["kv_host"], abs=0.05)
    total_actual = sum(actual.get(k, 0.0) for k in ("model_host", "kv_host", "compute_host", "output_host"))
    total_est = (est.weights_bytes + est.kv_cache_bytes + est.compute_bytes + est.output_bytes) / MiB
    assert total_est == pytest.approx(total_actual, rel=0.03)


SQUEEZE = H200.parent / "h200-squeeze"
SQUEEZE_RUNS = json.loads((SQUEEZE / "squeeze.json").read_text())


@pytest.mark.parametrize("case", range(len(SQUEEZE_RUNS)))
def test_plans_made_for_little_free_memory_loaded_on_the_h200(case: int) -> None:
    """bench/squeeze_runs.py: another process held all but 1.8-4 GB of an H200; planner probed, planned, and
    llama-server started with exactly the plan's flags. Every plan loaded, and the estimate matches the buffers."""
    run = SQUEEZE_RUNS[case]
    assert run["plan_exit"] == 0 and run["ready"] and run["alive_after_prompt"]
    log = next(SQUEEZE.glob(f"squeeze-{case}-*.log")).read_text()
    actual = parse_buffers(log)
    facts = ModelFacts.model_validate_json((H200 / "facts" / f"{run['model']}.json").read_text())
    gpu = Gpu.model_validate(json.loads(PROBE_H200.read_text())["gpus"][0])
    settings = Settings.model_validate(run["plan"]["settings"])
    dev = estimate_memory(facts, settings, [gpu], "llama-server").devices[0]
    assert dev.weights_bytes / MiB == pytest.approx(actual["model_gpu"], abs=0.05)
    assert dev.kv_cache_bytes / MiB == pytest.approx(actual.get("kv_gpu", 0.0), abs=0.05)  # buffer alignment
    assert dev.compute_bytes / MiB == pytest.approx(actual["compute_gpu"], rel=0.01)
    # nvidia-smi's view of the process stayed inside the plan, and the plan inside the free memory it was made for
    assert run["process_used_mib"] <= dev.total_bytes / MiB
    assert run["process_used_mib"] <= run["plan"]["gpu_capacity_mib"]
