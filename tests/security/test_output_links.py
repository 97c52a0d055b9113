"""Links and FIFOs in the output folder are never followed: planner reads, chmods, backs up and logs only into
regular files of its own, and refuses (or, with --force, moves aside) anything else.

Run as a user runs it: `planner deploy` in a subprocess; the server log through the real launch code.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy.conftest import make_plan

from planner.errors import BadInput
from planner.serving.launch import LOG_FILE, _start_process, launch

ROOT = Path(__file__).resolve().parents[2]
SMOL = ROOT / "tests" / "fixtures" / "cache" / "SmolLM2-135M-Instruct.Q4_1.gguf"
EDITED = "# my own compose file\nservices: {}\n"


def deploy(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    env.pop("PLANNER_DEBUG", None)
    argv = [sys.executable, "-m", "planner", "deploy", str(SMOL), "--gpu", "none", "--no-download", "--out", str(out)]
    return subprocess.run([*argv, *extra], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def assert_one_error(proc: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert proc.returncode == code, proc.stderr[-800:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error: ") and message in lines[0], proc.stderr


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file that is not in the output folder, that someone links to from there."""
    path = tmp_path / "elsewhere" / "secret.txt"
    path.parent.mkdir()
    path.write_text("someone else's secret\n")
    path.chmod(0o644)
    return path


def test_an_api_key_link_is_refused_and_its_target_untouched(tmp_path: Path, outside: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "api-key").symlink_to(outside)
    assert_one_error(deploy(out), 2, "api-key is a symbolic link")
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644  # not chmod-ed to 0600
    assert outside.read_text() == "someone else's secret\n"
    assert sorted(p.name for p in out.iterdir()) == ["api-key"]  # refused before anything was written


def test_a_dangling_backup_link_is_not_written_through(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "elsewhere" / "planted"  # does not exist: a write "to" the link would create it
    target.parent.mkdir()
    (out / "compose.yml").write_text(EDITED)
    (out / "compose.yml.bak").symlink_to(target)
    proc = deploy(out, "--force", "--json")
    assert proc.returncode == 0, proc.stderr
    assert not os.path.lexists(target)
    assert (out / "compose.yml.bak").is_symlink()  # left as it was
    assert (out / "compose.yml.bak.1").read_text() == EDITED and not (out / "compose.yml.bak.1").is_symlink()
    assert json.loads(proc.stdout)["backups"] == [str(out / "compose.yml.bak.1")]


def test_a_rendered_file_that_is_a_link_is_refused_or_moved_aside(tmp_path: Path, outside: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "compose.yml").symlink_to(outside)
    assert_one_error(deploy(out), 2, "changed since planner wrote it")
    proc = deploy(out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert outside.read_text() == "someone else's secret\n"
    assert (out / "compose.yml").is_file() and not (out / "compose.yml").is_symlink()
    assert os.readlink(out / "compose.yml.bak") == str(outside)  # the link itself, kept as the backup


def test_a_manifest_link_is_neither_read_nor_written_through(tmp_path: Path, outside: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".planner-manifest.json").symlink_to("/dev/zero")  # an endless read if it were followed
    proc = deploy(out)
    assert proc.returncode == 0, proc.stderr
    manifest = out / ".planner-manifest.json"
    assert not manifest.is_symlink() and "compose.yml" in json.loads(manifest.read_text())["files"]


@pytest.fixture
def launch_args(tmp_path: Path) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    out.mkdir()
    return dict(
        plan=make_plan(SMOL, []), out_dir=out, model_path=str(SMOL), alias="smol", host="127.0.0.1", port=port,
        api_key="k", api_key_file=out / "api-key", endpoint=f"http://127.0.0.1:{port}/v1", method="embedded",
    )  # fmt: skip


def test_a_server_log_link_is_refused_before_any_server_starts(launch_args: dict, outside: Path):
    log = launch_args["out_dir"] / LOG_FILE
    log.symlink_to(outside)
    with pytest.raises(BadInput, match="server.log is a symbolic link"):
        launch(**launch_args)
    assert outside.read_text() == "someone else's secret\n"


def test_a_server_log_fifo_is_refused_at_once(launch_args: dict):
    log = launch_args["out_dir"] / LOG_FILE
    os.mkfifo(log)
    started = time.monotonic()
    with pytest.raises(BadInput, match="server.log is not a regular file"):
        launch(**launch_args)
    assert time.monotonic() - started < 5  # an open() of a FIFO without a reader would block forever


def test_the_server_log_is_appended_to(tmp_path: Path):
    log = tmp_path / LOG_FILE
    log.write_text("earlier run\n")
    cmd = [sys.executable, "-c", "print('server says hi')"]
    launched = _start_process("native", cmd, {}, log, "http://127.0.0.1:1/v1", [], [])
    assert launched.process is not None and launched.process.wait(30) == 0
    assert log.read_text() == "earlier run\nserver says hi\n"
