"""On a real GPU with little free memory: does planner's plan load, and how much does it leave idle?

    python bench/squeeze_runs.py LLAMA_SERVER MODELS_DIR OUT_DIR

For each amount of free memory: hold the rest (bench/hold_gpu_memory.py), run `planner probe` and `planner plan`
on the real GGUF (planner sees only the free memory, as it would beside a desktop session), start llama-server
with exactly the plan's flags, send a prompt as long as the planned context allows, and record whether it loaded,
the VRAM nvidia-smi attributes to it, what stayed free, and the plan's own prediction.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from cuda_buffers import run_prompt, stop, used_by, wait_ready  # noqa: E402

CASES = [("llama-1b", 4000), ("llama-1b", 2600), ("qwen2-vocab", 2000), ("llama-1b", 1800)]


def free_mib() -> int:
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"], capture_output=True, text=True
    ).stdout
    return int(out.split()[0])


def main() -> int:
    server, models, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, (model, leave) in enumerate(CASES):
        hold = subprocess.Popen([sys.executable, str(ROOT / "bench" / "hold_gpu_memory.py"), str(leave)])
        time.sleep(3)
        record: dict = {"model": model, "left_free_mib": leave, "free_before_mib": free_mib()}
        plan_proc = subprocess.run(
            [sys.executable, "-m", "planner", "plan", str(models / f"{model}.gguf"), "--json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        record["plan_exit"] = plan_proc.returncode
        if plan_proc.returncode not in (0, 3):
            record["plan_error"] = plan_proc.stderr[-500:]
            hold.terminate()
            results.append(record)
            continue
        plan = json.loads(plan_proc.stdout)
        dev = plan["memory"]["devices"][0] if plan["memory"]["devices"] else {}
        record["plan"] = {
            "fits": plan["fits"], "where": plan["where"], "settings": plan["settings"],
            "gpu_total_mib": dev.get("total_bytes", 0) / 2**20,
            "gpu_capacity_mib": dev.get("capacity_bytes", 0) / 2**20,
        }  # fmt: skip
        args = list(plan["command"][1:])
        port = 19080 + i
        args[args.index("--port") + 1] = str(port)
        log_path = out / f"squeeze-{i}-{model}-{leave}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen([str(server), *args, "-lv", "4"], stdout=log, stderr=subprocess.STDOUT)
        record["ready"] = wait_ready(port, proc, timeout=60)
        if record["ready"]:
            # fill most of the planned context: the compute pool grows with what is processed
            run_prompt(port, int(plan["settings"]["ctx_size"] * 0.8), record)
            record["process_used_mib"] = used_by(proc.pid)
            record["free_after_prompt_mib"] = free_mib()
            record["alive_after_prompt"] = proc.poll() is None
        stop(proc)
        hold.terminate()
        hold.wait()
        print(json.dumps(record), flush=True)
        results.append(record)
        (out / "squeeze.json").write_text(json.dumps(results, indent=1))  # after every case: a cut run keeps them
    return 0


if __name__ == "__main__":
    sys.exit(main())
