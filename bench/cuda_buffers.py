"""Run a real llama-server on a GPU with several plans and record its own buffer sizes and the VRAM it really uses.

Device-only (needs an NVIDIA GPU and a CUDA build of llama-server); the results are committed as
tests/fixtures/cuda-buffers/*.json and compared with planner's estimate by bench/memory_vs_llamacpp.py --cuda.

    python bench/cuda_buffers.py LLAMA_SERVER MODELS_DIR OUT_DIR
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# (run name, model, llama-server arguments). Every plan knob explicit, --fit off: llama.cpp must not re-plan.
RUNS: list[tuple[str, str, list[str]]] = [
    ("llama-full-fa", "llama-1b", ["-ngl", "99", "-c", "4096", "-b", "2048", "-ub", "512", "-fa", "on", "-np", "1"]),
    ("llama-full-nofa", "llama-1b", ["-ngl", "99", "-c", "4096", "-b", "2048", "-ub", "512", "-fa", "off", "-np", "1"]),
    ("llama-q8kv-16k", "llama-1b",
     ["-ngl", "99", "-c", "16384", "-b", "2048", "-ub", "512", "-fa", "on", "-ctk", "q8_0", "-ctv", "q8_0", "-np", "1"]),
    ("llama-partial", "llama-1b", ["-ngl", "9", "-c", "4096", "-b", "2048", "-ub", "512", "-fa", "on", "-np", "1"]),
    ("llama-ub2048", "llama-1b", ["-ngl", "99", "-c", "8192", "-b", "2048", "-ub", "2048", "-fa", "on", "-np", "1"]),
    ("qwen2-vocab-np4", "qwen2-vocab", ["-ngl", "99", "-c", "8192", "-b", "2048", "-ub", "512", "-fa", "on", "-np", "4"]),
    ("qwen2-vocab-nofa", "qwen2-vocab", ["-ngl", "99", "-c", "8192", "-b", "2048", "-ub", "512", "-fa", "off", "-np", "1"]),
    ("gemma2-swa", "gemma2-swa", ["-ngl", "99", "-c", "16384", "-b", "2048", "-ub", "512", "-fa", "on", "-np", "1"]),
    ("moe-full", "llama-moe", ["-ngl", "99", "-c", "4096", "-b", "2048", "-ub", "512", "-fa", "on", "-np", "1"]),
    ("moe-cpu-moe", "llama-moe",
     ["-ngl", "99", "-c", "4096", "-b", "2048", "-ub", "512", "-fa", "on", "-np", "1", "--n-cpu-moe", "4"]),
]  # fmt: skip


def used_by(pid: int) -> int | None:
    """VRAM (MiB) nvidia-smi attributes to the process."""
    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if parts and parts[0] == str(pid):
            return int(parts[1])
    return None


def gpu_used() -> int:
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"], capture_output=True, text=True
    ).stdout
    return int(out.split()[0])


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except Exception:
            pass
        time.sleep(0.3)
    return False


def _post(port: int, path: str, payload: dict, timeout: float = 120) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def run_prompt(port: int, tokens: int, record: dict) -> None:
    """Send a prompt of about `tokens` tokens (sized with the server's own tokenizer) and record its timings."""
    try:
        per_piece = len(_post(port, "/tokenize", {"content": "hello world "})["tokens"]) or 1
        prompt = "hello world " * max(1, tokens // per_piece)
        record["timings"] = _post(port, "/completion", {"prompt": prompt, "n_predict": 16}).get("timings", {})
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        record["completion_error"] = str(exc)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    server, models, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    results = []
    baseline = gpu_used()
    for i, (name, model, args) in enumerate(RUNS):
        port = 18080 + i
        log_path = out / f"{name}.log"
        cmd = [str(server), "-m", str(models / f"{model}.gguf"), "--port", str(port), "--fit", "off", "-lv", "4", *args]
        with log_path.open("w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        record: dict = {"run": name, "model": model, "args": args, "gpu_used_before_mib": baseline}
        t0 = time.monotonic()
        ready = wait_ready(port, proc)
        record["ready"] = ready
        record["load_s"] = round(time.monotonic() - t0, 2)
        if ready:
            record["process_used_mib_idle"] = used_by(proc.pid)
            run_prompt(port, 3500, record)
            record["process_used_mib_after_prompt"] = used_by(proc.pid)
            record["gpu_used_after_prompt_mib"] = gpu_used()
        stop(proc)
        record["exit_code"] = proc.returncode
        results.append(record)
        print(json.dumps(record), flush=True)
    (out / "runs.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
