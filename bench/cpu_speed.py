"""Measure llama.cpp's CPU speed here (llama-cpp-python) and print it beside planner's prediction.

    python bench/cpu_speed.py [--threads N]

Models: the real SmolLM2-135M GGUF and generated 1.2B llama / 0.4B qwen2 GGUFs (bench/bench_models.py GPU set,
zero weights: speed depends on sizes, not values). Prints measured and predicted prompt and generation tokens/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_models import GPU, make  # noqa: E402

from planner.core.memory import estimate_memory  # noqa: E402
from planner.core.speed import estimate_speed  # noqa: E402
from planner.hardware.host import probe_cpu  # noqa: E402
from planner.models.gguf_header import facts_from_headers, read_local  # noqa: E402
from planner.types.plan import Settings  # noqa: E402

SMOLLM2 = ROOT / "tests" / "fixtures" / "cache" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def measure(path: Path, threads: int) -> tuple[float, float]:
    from llama_cpp import Llama

    model = Llama(str(path), n_ctx=1024, n_batch=512, n_threads=threads, verbose=False)
    tokens = model.tokenize(b"hello world " * 100)[:256]
    start = time.perf_counter()
    model.eval(tokens)
    prompt = len(tokens) / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(24):
        model.eval([tokens[i % 50]])
    return prompt, 24 / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    cpu = probe_cpu()
    threads = args.threads or cpu.physical_cores
    with tempfile.TemporaryDirectory() as tmp:
        models = {"smollm2-135m": SMOLLM2, **make(Path(tmp), {k: GPU[k] for k in ("llama-1b", "qwen2-vocab")})}
        print(f"{'model':<14} {'prompt t/s':>22} {'generation t/s':>22}")
        for name, path in models.items():
            facts = facts_from_headers([read_local(path)], source=name, files=[path.name])
            settings = Settings(ctx_size=1024, batch_size=512, ubatch_size=512, threads=threads)
            memory = estimate_memory(facts, settings, [], "llama-cpp-python")
            predicted = estimate_speed(facts, settings, memory, [], cpu, context_fill=256)
            pp, tg = measure(path, threads)
            print(
                f"{name:<14} {pp:8.1f} vs {predicted.prompt_tokens_per_s:8.1f} pred "
                f"{tg:8.1f} vs {predicted.generation_tokens_per_s:8.1f} pred"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
