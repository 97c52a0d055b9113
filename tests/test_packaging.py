"""A non-editable install of the wheel finds hardware_db/ and templates/ inside the package (planner/_data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_its_data_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(wheel_dir)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    wheel = next(wheel_dir.glob("llm_planner-*.whl"))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    assert (site / "planner" / "_data" / "hardware_db" / "gpus").is_dir()
    assert (site / "planner" / "_data" / "templates" / "compose.yml.j2").is_file()

    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    run = tmp_path / "elsewhere"
    run.mkdir()
    where = subprocess.run(
        [sys.executable, "-c", "import planner, planner.data.paths as p; print(planner.__file__); print(p.hardware_db())"],  # noqa: E501
        cwd=run, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    module_file, data_dir = where.stdout.split()
    assert module_file.startswith(str(site)) and data_dir.startswith(str(site))

    gpus = subprocess.run(
        [sys.executable, "-m", "planner", "gpus", "Tesla P4", "--json"], cwd=run, env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    assert json.loads(gpus.stdout)[0]["compute_capability"] == "6.1"
    plan = subprocess.run(
        [sys.executable, "-m", "planner", "plan", "qwen1.5-14b-chat", "--gpu", "Tesla P4", "--ram", "8GB",
         "--cpu-cores", "4", "--json", "--prefer", "speed", "--min-ctx", "2048"],  # the README's classic answer
        cwd=run, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["model"]["quant"] == "Q2_K"  # the wheel's catalog and quality data were found
