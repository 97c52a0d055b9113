"""planner's memory estimate against llama.cpp's own reported buffers, per buffer.

Two sources of truth:

* CPU (default): loads the real SmolLM2-135M GGUF and generated GGUFs of several architectures with
  llama-cpp-python, sweeping ctx / ubatch / KV types / flash attention, and parses the buffer sizes llama.cpp logs.
* CUDA (`--cuda DIR`): llama-server logs recorded on a real GPU by bench/cuda_buffers.py (committed under
  tests/fixtures/cuda-buffers/), plus the VRAM nvidia-smi attributed to the process.

    python bench/memory_vs_llamacpp.py                 # CPU sweep here (about a minute)
    python bench/memory_vs_llamacpp.py --cuda tests/fixtures/cuda-buffers/h200

Prints estimate vs actual for weights, KV, compute and the total, with the error of each.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_models import SMALL, make  # noqa: E402

from planner.core.llamacpp_log import parse_buffers  # noqa: E402
from planner.core.memory import estimate_memory  # noqa: E402
from planner.models.gguf_header import facts_from_headers, read_local  # noqa: E402
from planner.types.hardware import Gpu  # noqa: E402
from planner.types.model import ModelFacts  # noqa: E402
from planner.types.plan import Settings  # noqa: E402

MiB = 1024 * 1024
SMOLLM2 = ROOT / "tests" / "fixtures" / "cache" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def facts_of(path: Path):  # noqa: ANN201
    return facts_from_headers([read_local(path)], source=str(path), files=[str(path)])


# ------------------------------------------------------------------------------------------------ CPU sweep
CPU_SWEEP = [
    # (model, ctx, batch, ubatch, flash_attn, type_k, type_v)
    ("smollm2", 2048, 512, 512, "on", "f16", "f16"),
    ("smollm2", 2048, 512, 512, "off", "f16", "f16"),
    ("smollm2", 8192, 2048, 512, "on", "q8_0", "q8_0"),
    ("smollm2", 8192, 2048, 128, "on", "f16", "f16"),
    ("smollm2", 4096, 1024, 1024, "off", "q8_0", "f16"),
    ("smollm2", 512, 512, 256, "on", "q4_0", "q4_0"),
    ("llama-gqa", 2048, 512, 512, "on", "f16", "f16"),
    ("llama-gqa", 4096, 2048, 512, "off", "f16", "f16"),
    ("qwen2-bias", 2048, 512, 512, "on", "q8_0", "q8_0"),
    ("qwen2-bias", 1024, 1024, 256, "off", "f16", "f16"),
    ("gemma2-swa", 4096, 512, 512, "on", "f16", "f16"),
    ("gemma2-swa", 2048, 512, 256, "off", "f16", "f16"),
    ("llama-moe", 2048, 512, 512, "on", "f16", "f16"),
    ("llama-moe", 4096, 1024, 256, "off", "q8_0", "f16"),
]
GGML_TYPE = {"f16": 1, "q8_0": 8, "q4_0": 2}

LOADER = """
import sys
from llama_cpp import Llama
path, ctx, batch, ubatch, fa, tk, tv = sys.argv[1:8]
Llama(path, n_ctx=int(ctx), n_batch=int(batch), n_ubatch=int(ubatch), n_threads=2, verbose=True,
      flash_attn=fa == "on", type_k=int(tk), type_v=int(tv), n_gpu_layers=0)
"""


def run_cpu(models: dict[str, Path]) -> list[dict]:
    rows = []
    for name, ctx, batch, ubatch, fa, tk, tv in CPU_SWEEP:
        path = SMOLLM2 if name == "smollm2" else models[name]
        proc = subprocess.run(
            [sys.executable, "-c", LOADER, str(path), str(ctx), str(batch), str(ubatch), fa,
             str(GGML_TYPE[tk]), str(GGML_TYPE[tv])],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        actual = parse_buffers(proc.stderr)
        settings = Settings(
            n_gpu_layers=0, ctx_size=ctx, batch_size=batch, ubatch_size=ubatch, flash_attn=fa,
            cache_type_k=tk, cache_type_v=tv, threads=2, parallel=1, kv_unified=False, swa_full=True,
        )  # fmt: skip
        est = estimate_memory(facts_of(path), settings, [], "llama-cpp-python")
        rows.append(
            {
                "case": f"{name} c{ctx} b{batch} ub{ubatch} fa-{fa} {tk}/{tv}",
                "weights": (est.host.weights_bytes / MiB, actual.get("model_host", 0.0)),
                "kv": (est.host.kv_cache_bytes / MiB, actual.get("kv_host", 0.0)),
                "compute": (est.host.compute_bytes / MiB, actual.get("compute_host", 0.0)),
                "total": (
                    (est.host.weights_bytes + est.host.kv_cache_bytes + est.host.compute_bytes + est.host.output_bytes)
                    / MiB,
                    sum(actual.get(k, 0.0) for k in ("model_host", "kv_host", "compute_host", "output_host")),
                ),
            }
        )
    return rows


# ------------------------------------------------------------------------------------------------ CUDA logs
def settings_from_args(args: list[str]) -> Settings:
    opts = dict(zip(args[::2], args[1::2]))
    n_ctx = int(opts.get("-c", 4096))
    return Settings(
        n_gpu_layers=int(opts.get("-ngl", 99)),
        ctx_size=n_ctx,
        batch_size=int(opts.get("-b", 2048)),
        ubatch_size=int(opts.get("-ub", 512)),
        flash_attn=opts.get("-fa", "on"),
        cache_type_k=opts.get("-ctk", "f16"),
        cache_type_v=opts.get("-ctv", "f16"),
        parallel=int(opts.get("-np", 1)),
        kv_unified=False,  # an explicit -np without -kvu: one KV stream per slot
        n_cpu_moe=int(opts.get("--n-cpu-moe", 0)),
        threads=16,
    )


def run_cuda(folder: Path) -> list[dict]:
    runs = json.loads((folder / "runs.json").read_text())
    probe = json.loads((ROOT / "tests" / "fixtures" / "probe-h200.json").read_text())["gpus"][0]
    gpu = Gpu.model_validate(probe)
    rows = []
    for run in runs:
        actual = parse_buffers((folder / f"{run['run']}.log").read_text())
        # the models' facts, parsed from the generated GGUFs on the GPU machine (bench_models.GPU)
        facts = ModelFacts.model_validate_json((folder / "facts" / f"{run['model']}.json").read_text())
        settings = settings_from_args(run["args"])
        est = estimate_memory(facts, settings, [gpu], "llama-server")
        dev = est.devices[0]
        used = run.get("process_used_mib_after_prompt") or run.get("process_used_mib_idle")
        rows.append(
            {
                "case": run["run"],
                "weights": (dev.weights_bytes / MiB, actual.get("model_gpu", 0.0)),
                "kv": (dev.kv_cache_bytes / MiB, actual.get("kv_gpu", 0.0)),
                "compute": (dev.compute_bytes / MiB, actual.get("compute_gpu", 0.0)),
                "host compute": (est.host.compute_bytes / MiB, actual.get("compute_host", 0.0)),
                "VRAM (nvidia-smi)": (dev.total_bytes / MiB, float(used or 0)),
            }
        )
    return rows


def report(rows: list[dict]) -> dict[str, float]:
    columns = [k for k in rows[0] if k != "case"]
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':<{width}}  " + "  ".join(f"{c:>26}" for c in columns))
    worst: dict[str, float] = {c: 0.0 for c in columns}
    for r in rows:
        cells = []
        for c in columns:
            est, act = r[c]
            err = (est - act) / act * 100 if act else (0.0 if est == 0 else float("inf"))
            worst[c] = max(worst[c], abs(err))
            cells.append(f"{est:9.2f} vs {act:9.2f} {err:+5.1f}%")
        print(f"{r['case']:<{width}}  " + "  ".join(f"{x:>26}" for x in cells))
    print("worst |error| per column: " + ", ".join(f"{c} {v:.1f}%" for c, v in worst.items()))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuda", type=Path, help="folder of llama-server logs recorded by bench/cuda_buffers.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.cuda:
            rows = run_cuda(args.cuda)
        else:
            rows = run_cpu(make(Path(tmp), SMALL))
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
