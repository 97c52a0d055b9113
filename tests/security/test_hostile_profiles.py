"""Hostile --hardware profiles (issue #16, Medium 4 and Low): values no machine reports end in exit 2, quickly.

Each profile is the repo's real H200 probe (tests/fixtures/probe-h200.json) with one value changed, run through
the real CLI. Before the fix: negative VRAM or cores planned with exit 0, negative RAM said "does not fit"
(exit 3), compute_capability "abc" was an internal error, and a 100k-character GPU name took 62 s to print.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PROBE = ROOT / "tests" / "fixtures" / "probe-h200.json"
SMOL = ROOT / "tests" / "fixtures" / "cache" / "SmolLM2-135M-Instruct.Q4_1.gguf"
CLI_SECONDS = 20.0  # a whole planner subprocess on a loaded 2-core machine; the 100k name took 62 s before


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(profile: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = profile
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value

    return change


CASES = [
    ("gpus.0.memory_total_bytes", -5, "gpus.0.memory_total_bytes: -5 is negative"),
    ("gpus.0.memory_free_bytes", -1, "gpus.0.memory_free_bytes: -1 is negative"),
    ("memory.total_bytes", -1, "memory.total_bytes: -1 is negative"),
    ("cpu.physical_cores", -4, "cpu.physical_cores: -4, a machine has at least one core"),
    ("cpu.logical_cores", 0, "cpu.logical_cores: 0, a machine has at least one core"),
    ("gpus.0.memory_bandwidth_gbs", -100.0, "memory_bandwidth_gbs: -100.0 is negative"),
    ("gpus.0.fp16_tflops", float("inf"), "gpus.0.fp16_tflops: inf is not a number"),
    ("gpus.0.compute_capability", "abc", "compute_capability: 'abc' is not like 8.6"),
    ("gpus.0.name", "N" * 100_000, "gpus.0.name: 100000 characters, more than 256"),
    ("cpu.model", "C" * 1000, "cpu.model: 1000 characters, more than 256"),
    ("warnings", ["w " * 2000] * 200, "the profile holds more than 262144 characters of text"),
    ("cpu.flags", ["avx"] * 5000, "cpu.flags: 5000 entries"),
]


def _profile(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    profile = json.loads(PROBE.read_text())
    change(profile)
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(profile))
    return path


def _plan(profile: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "PYTHONPATH": str(ROOT)}
    env.pop("PLANNER_DEBUG", None)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "plan", str(SMOL), "--hardware", str(profile)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    return proc, time.monotonic() - start


@pytest.mark.parametrize(("field", "value", "message"), CASES, ids=[c[0] for c in CASES])
def test_impossible_profile_values_are_refused(tmp_path: Path, field: str, value: Any, message: str) -> None:
    proc, seconds = _plan(_profile(tmp_path, _set(field, value)))
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-500:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error: --hardware "), proc.stderr[-500:]
    assert "impossible value in the profile" in lines[0] and message in lines[0], lines[0]
    assert proc.stdout == ""
    assert seconds < CLI_SECONDS


def test_too_many_gpus_are_refused(tmp_path: Path) -> None:
    proc, _ = _plan(_profile(tmp_path, lambda p: p.update(gpus=p["gpus"] * 65)))
    assert proc.returncode == 2 and "65 GPUs, planner plans for at most 64" in proc.stderr


def test_the_real_probe_and_long_but_real_names_still_plan(tmp_path: Path) -> None:
    proc, _ = _plan(PROBE)
    assert proc.returncode == 0, proc.stderr
    long_name = "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition"  # a real name, 55 characters
    proc, _ = _plan(_profile(tmp_path, _set("gpus.0.name", long_name)))
    assert proc.returncode == 0, proc.stderr
    assert long_name in proc.stdout
