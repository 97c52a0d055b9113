"""`planner doctor` end to end through the CLI: JSON shape, findings for a what-if Tesla P4, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from planner.checks import Findings
from planner.cli.app import app
from planner.types.hardware import Gpu, Hardware, Memory

REPO = Path(__file__).resolve().parents[2]
GiB = 1024**3


def test_what_if_tesla_p4_json_lists_the_vllm_and_cooling_findings() -> None:
    result = CliRunner().invoke(app, ["doctor", "--gpu", "Tesla P4", "--ram", "8GB", "--cpu-cores", "4", "--json"])
    assert result.exit_code == 0, result.output  # warnings only: a what-if card has no driver to be wrong
    findings = Findings.model_validate(json.loads(result.stdout))
    by_id = {f.id: f for f in findings.findings}
    assert by_id["vllm-unsupported"].severity == "warn" and "GPTQ" in by_id["vllm-unsupported"].title
    assert by_id["passive-cooling"].severity == "warn"  # temperature unknown for a what-if card
    assert by_id["driver-unknown"].severity == "info"
    assert findings.hardware.gpus[0].name == "Tesla P4" and findings.hardware.source == "what-if"
    assert findings.image is not None and findings.image.tag == "server-cuda"
    # the JSON is exactly the model the console view draws
    assert json.loads(result.stdout) == json.loads(findings.model_dump_json())


def test_saved_profile_with_an_old_driver_exits_1(tmp_path: Path) -> None:
    # values from /work/shared/fixtures/nvidia-smi/tesla-p4_driver-470_nvidia-smi.txt
    p4 = Gpu(
        name="Tesla P4",
        compute_capability="6.1",
        memory_total_bytes=7611 * 1024**2,
        driver_version="470.256.02",
        cuda_driver_version="11.4",
        source="file",
    )
    hardware = Hardware(gpus=[p4], memory=Memory(total_bytes=8 * GiB, available_bytes=6 * GiB), source="file")
    hardware.driver.nvml_available, hardware.driver.driver_version = True, "470.256.02"
    profile = tmp_path / "p4.json"
    profile.write_text(hardware.model_dump_json())
    result = CliRunner().invoke(app, ["doctor", "--hardware", str(profile)])
    assert result.exit_code == 1, result.output
    assert "Errors" in result.stdout and "too old" in result.stdout


def test_bad_gpu_name_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "planner", "doctor", "--gpu", "Tesla Q9000 Imaginary"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error:")


def test_doctor_with_a_local_model_checks_the_plans_needs(smollm2_path: Path) -> None:
    args = ["doctor", str(smollm2_path), "--gpu", "Tesla P4", "--ram", "8GB", "--cpu-cores", "4", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    findings = Findings.model_validate(json.loads(result.stdout))
    assert findings.model == str(smollm2_path)
    ids = {f.id for f in findings.findings}
    assert "ram-ok" in ids  # a 135M model's host part fits in 8 GB
    assert not {i for i in ids if i.startswith("disk-")}  # a local file needs no download


def test_doctor_with_a_model_too_big_for_ram_is_an_error(smollm2_path: Path) -> None:
    args = ["doctor", str(smollm2_path), "--gpu", "none", "--ram", "64MB", "--cpu-cores", "1", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    findings = Findings.model_validate(json.loads(result.stdout))
    assert any(f.severity == "error" for f in findings.findings)
