"""How fast `planner plan` answers offline (the tool itself, not the model): wall time of whole CLI runs.

    python bench/plan_speed.py [--runs 5]

Each case runs `python -m planner plan ... --offline --json` in a fresh process (imports, data loading, the solver
and rendering included) and prints the median and best wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "P4 story": ["plan", "qwen1.5-14b-chat", "--gpu", "Tesla P4", "--ram", "8GB", "--cpu-cores", "4"],
    "recommend (no model)": ["plan"],
    "70B on 2x RTX 3090": ["plan", "llama-3.3-70b-instruct", "--gpu", "2x RTX 3090", "--ram", "64GB"],
    "local SmolLM2 GGUF": ["plan", str(ROOT / "tests/fixtures/cache/SmolLM2-135M-Instruct.Q4_1.gguf"), "--gpu", "none"],
    "--help": ["--help"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    print(f"{'case':<24} {'median s':>9} {'best s':>8}")
    for name, argv in CASES.items():
        extra = [] if argv == ["--help"] else ["--offline", "--json"]
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "planner", *argv, *extra], env=env, cwd=ROOT, capture_output=True)
            times.append(time.perf_counter() - start)
        print(f"{name:<24} {statistics.median(times):9.2f} {min(times):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
