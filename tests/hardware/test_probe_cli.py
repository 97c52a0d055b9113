"""`planner probe` end to end: JSON matches the OS, --save writes atomically and never clobbers."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli.app import app
from planner.errors import BadInput
from planner.types.hardware import Hardware

REPO = Path(__file__).resolve().parents[2]


def _planner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


def test_probe_json_reports_what_the_os_reports(tmp_path: Path) -> None:
    done = _planner("probe", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    hardware = Hardware.model_validate(data)
    assert hardware.cpu.logical_cores == os.cpu_count()
    if platform.system() == "Linux":
        meminfo = Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0]
        assert hardware.memory.total_bytes == int(meminfo) * 1024
    assert hardware.disk.free_bytes is not None
    assert isinstance(data["gpus"], list) and {"docker_client", "nvidia_runtime"} <= set(data["container"])


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "box.json"
    result = CliRunner().invoke(app, ["probe", "--json", "--save", str(target)])
    assert result.exit_code == 0, result.output
    saved = Hardware.model_validate_json(target.read_text())
    printed = Hardware.model_validate_json(result.stdout)
    assert saved == printed
    assert saved.model_dump_json() == Hardware.model_validate_json(saved.model_dump_json()).model_dump_json()
    assert [p.name for p in tmp_path.iterdir()] == ["box.json"]  # no temp file left behind


def test_save_refuses_to_clobber(tmp_path: Path) -> None:
    target = tmp_path / "mine.json"
    target.write_text("my notes\n")
    done = _planner("probe", "--save", str(target), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"planner: error: {target} already exists; use --force to replace it"]
    assert target.read_text() == "my notes\n"

    result = CliRunner().invoke(app, ["probe", "--save", str(target)])
    assert isinstance(result.exception, BadInput)

    forced = CliRunner().invoke(app, ["probe", "--save", str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    assert Hardware.model_validate_json(target.read_text()).source == "probe"
    assert "Saved to" in forced.output


def test_save_into_a_missing_folder_is_bad_input(tmp_path: Path) -> None:
    done = _planner("probe", "--save", str(tmp_path / "nope" / "box.json"), cwd=tmp_path)
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(platform.system() != "Linux", reason="rich view text checked on Linux")
def test_rich_view_names_cpu_ram_disk_and_container(tmp_path: Path) -> None:
    done = _planner("probe", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for label in ("CPU", "RAM", "Disk", "Container", "GPU driver"):
        assert label in done.stdout
