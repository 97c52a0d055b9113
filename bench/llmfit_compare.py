"""llmfit's generation-speed prediction beside planner's and the published measurement, row by row.

    python bench/llmfit_compare.py

For every row of hardware_db/speed_calibration.yaml with a published generation speed, llmfit (the PyPI wheel's
`llmfit` binary) is asked `llmfit plan MODEL --quant Q --context N --json` on that row's GPU. llmfit finds GPUs
through `nvidia-smi --query-gpu=...`; no NVIDIA driver exists here, so a stand-in `nvidia-smi` on PATH answers
that one query with the card's name and the memory a real card reports (hardware_db usable_vram_bytes). llmfit
then applies its own bandwidth table and formula. Proxies point at a closed local port so nothing leaves this
machine. For the Tesla P4 story it also runs `llmfit info` (llmfit's own pick of quant and its fit claim).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from planner.core.memory import estimate_memory
from planner.core.speed import DEFAULT_CONSTANTS, generation_seconds
from planner.data.calibration import Case, Row, build_case, load_rows, terms_for
from planner.data.gpus import match_gpu

MIB = 1 << 20
GIB = 1 << 30
STORY_ID = "tesla-p4-qwen1-5-14b-chat-q2-k-2024-03-story"
# llmfit's model database names for the published models
LLMFIT_MODEL = {
    "Llama-2-7B": "meta-llama/Llama-2-7b-hf",
    "LLaMA 7B": "meta-llama/Llama-2-7b-hf",
    "CodeLlama-7B": "codellama/CodeLlama-7b-hf",
    "Llama-3-8B": "meta-llama/Meta-Llama-3-8B",
    "Llama-3.1-8B": "meta-llama/Llama-3.1-8B",
    "LLaMA 13B": "meta-llama/Llama-2-13b-hf",
    "Pythia-2.8B (gptneox)": "EleutherAI/pythia-2.8b",
    "Gemma-3-1B": "google/gemma-3-1b-it",
    "Qwen3-1.7B": "Qwen/Qwen3-1.7B",
    "Qwen1.5-14B-Chat": "Qwen/Qwen1.5-14B-Chat",
    "gpt-oss-20b": "openai/gpt-oss-20b",
    "Qwen3-8B": "Qwen/Qwen3-8B",
    "Qwen3-4B": "Qwen/Qwen3-4B",
    "Qwen3-32B": "Qwen/Qwen3-32B",
}
LLMFIT_QUANT = {"MXFP4_MOE": "MXFP4"}
# The product name nvidia-smi prints for each card (consumer cards carry "NVIDIA GeForce", datacenter ones the
# NVIDIA prefix since driver 5xx; Tesla-branded cards keep "Tesla").
NVSMI_PREFIX = {"RTX": "NVIDIA GeForce ", "A100": "NVIDIA ", "H100": "NVIDIA ", "DGX": "NVIDIA "}
FAKE_NVIDIA_SMI = """#!/bin/sh
# stand-in for the driver's nvidia-smi: answers llmfit's one query with a recorded card
case "$*" in
  *query-gpu*) printf '%s' "$FAKE_GPU_LINES";;
  *) exit 9;;
esac
"""


def nvsmi_name(db_name: str) -> str:
    for key, prefix in NVSMI_PREFIX.items():
        if db_name.startswith(key):
            return prefix + db_name
    return db_name


def gpu_lines(row: Row) -> str:
    spec = match_gpu(row.gpu_db)
    assert spec is not None
    mib = int(spec.usable_bytes) // MIB
    return "".join(f"[N/A], {mib}, {mib}, {nvsmi_name(spec.name)}\n" for _ in range(row.gpu_count))


def run_llmfit(args: list[str], row: Row, fake_dir: Path, ram: str = "64G", cores: int = 8) -> tuple[dict | None, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{fake_dir}{os.pathsep}{env.get('PATH', '')}",
        FAKE_GPU_LINES=gpu_lines(row),
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
    )
    cmd = ["llmfit", "--no-dashboard", "--ram", ram, "--cpu-cores", str(cores), *args, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    if out.returncode:
        err = [ln for ln in out.stderr.splitlines() if ln.strip() and "GLIBC" not in ln]
        return None, (err[-1] if err else f"exit {out.returncode}")[:70]
    return json.loads(out.stdout), ""


def planner_tg(case: Case) -> float:
    return 1.0 / generation_seconds(terms_for(case), DEFAULT_CONSTANTS)


def pct(pred: float, meas: float) -> float:
    return (pred / meas - 1) * 100


def main() -> int:
    if shutil.which("llmfit") is None:
        print("llmfit is not installed (pip install llmfit)")
        return 1
    fake_dir = Path(tempfile.mkdtemp(prefix="fake-nvidia-smi-"))
    script = fake_dir / "nvidia-smi"
    script.write_text(FAKE_NVIDIA_SMI)
    script.chmod(0o755)

    rows = [r for r in load_rows() if r.tg is not None]
    planner_err: list[float] = []
    llmfit_err: list[float] = []
    both_planner: list[float] = []
    print(f"{'row':50s} {'measured':>8s} {'planner':>8s} {'err %':>7s} {'llmfit':>8s} {'err %':>7s}  llmfit basis")
    for row in rows:
        case = build_case(row)
        ours = planner_tg(case)
        ctx = row.placement.ctx_size if row.placement else 512
        quant = LLMFIT_QUANT.get(row.quant, row.quant)
        data, err = run_llmfit(
            ["plan", LLMFIT_MODEL[row.model], "--context", str(ctx), "--quant", quant], row, fake_dir
        )
        theirs = data["current"]["estimated_tps"] if data else None
        planner_err.append(abs(pct(ours, row.tg)))
        if theirs:
            llmfit_err.append(abs(pct(theirs, row.tg)))
            both_planner.append(abs(pct(ours, row.tg)))
        their_text = f"{theirs:8.1f} {pct(theirs, row.tg):+7.1f}" if theirs else f"{'-':>8s} {'-':>7s}"
        basis = data["current"]["run_mode"] if data else f"llmfit cannot run this row: {err}"
        print(f"{row.id[:50]:50s} {row.tg:8.1f} {ours:8.1f} {pct(ours, row.tg):+7.1f} {their_text}  {basis}")

    print(
        f"\nmedian |error| of generation speed: planner {statistics.median(planner_err):.1f} % over "
        f"{len(planner_err)} rows; llmfit {statistics.median(llmfit_err):.1f} % over the {len(llmfit_err)} rows it "
        f"can run (planner on those rows: {statistics.median(both_planner):.1f} %)"
    )
    story(fake_dir)
    shutil.rmtree(fake_dir, ignore_errors=True)
    return 0


def story(fake_dir: Path) -> None:
    row = next(r for r in load_rows() if r.id == STORY_ID)
    case = build_case(row)
    print(
        "\nTesla P4 story: Qwen1.5-14B-Chat, i3-12100, 8 GB RAM, ctx 2048 (measured: Q2_K, -ngl 40 of 41, "
        f"{row.tg} t/s generation)"
    )
    data, err = run_llmfit(["--max-context", "2048", "info", "Qwen/Qwen1.5-14B-Chat"], row, fake_dir, "8G", 4)
    if data:
        m = data["models"][0]
        print(
            f"  llmfit info: picks {m['best_quant']}, run mode {m['run_mode']}, fit '{m['fit_level']}' "
            f"({m['memory_required_gb']} of {m['memory_available_gb']} GB), {m['estimated_tps']} t/s "
            f"({pct(m['estimated_tps'], row.tg):+.0f} % vs measured; method {m['estimate_basis']['method']})"
        )
    else:
        print(f"  llmfit info failed: {err}")
    spec = match_gpu("Tesla P4")
    assert spec is not None
    usable = int(spec.usable_bytes)
    full = case.settings.model_copy(update={"n_gpu_layers": case.facts.n_layer + 1})
    mem = estimate_memory(case.facts, full, case.gpus)
    dev = mem.devices[0]
    weights = case.facts.size_bytes - case.facts.input_bytes
    print(
        f"  the card: {usable / GIB:.2f} GiB usable; Q2_K file {case.facts.size_bytes / GIB:.2f} GiB "
        f"({weights / GIB:.2f} GiB offloadable), f16 KV at 2048 {dev.kv_cache_bytes / GIB:.2f} GiB (no GQA), "
        f"compute {dev.compute_bytes / GIB:.2f} GiB, CUDA runtime {dev.overhead_bytes / GIB:.2f} GiB"
    )
    verdict = "fits" if dev.total_bytes <= usable else "does NOT fit"
    print(
        f"  full offload with f16 KV needs {dev.total_bytes / GIB:.2f} GiB on the GPU: it {verdict} -> "
        f"llmfit's full-fit claim is {'right' if dev.total_bytes <= usable else 'wrong'}; the measured run kept the "
        "output layer on the CPU"
    )
    ours = planner_tg(case)
    print(f"  planner, on the measured placement: {ours:.2f} t/s ({pct(ours, row.tg):+.0f} %)")
    out = subprocess.run(
        [sys.executable, "-m", "planner", "plan", "qwen1.5-14b-chat", "--gpu", "Tesla P4", "--ram", "8GB",
         "--cpu-cores", "4", "--offline", "--json"],  # fmt: skip
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode == 0:
        plan = json.loads(out.stdout)
        s, sp = plan["settings"], plan["speed"]
        dev0 = plan["memory"]["devices"][0]
        print(
            f"  planner's own plan: {plan['model']['quant']}, -ngl {s['n_gpu_layers']} (all), KV {s['cache_type_k']}, "
            f"flash-attn {s['flash_attn']}, ctx {s['ctx_size']}: {dev0['total_bytes'] / GIB:.2f} of "
            f"{dev0['capacity_bytes'] / GIB:.2f} GiB, {sp['generation_tokens_per_s']} t/s "
            f"(band {sp['low']}-{sp['high']})"
        )
    else:
        print(f"  planner plan failed: {out.stderr.strip()}")


if __name__ == "__main__":
    raise SystemExit(main())
