"""`planner probe --save FILE --force` replaces only a regular file: never a device node, a FIFO or a link."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def probe_save(target: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("PLANNER_DEBUG", None)
    argv = [sys.executable, "-m", "planner", "probe", "--json", "--save", str(target), "--force"]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def assert_refused(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, proc.stderr[-800:]
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error: ") and message in lines[0], proc.stderr


def test_a_fifo_is_not_replaced(tmp_path: Path):
    fifo = tmp_path / "profile.json"
    os.mkfifo(fifo)
    assert_refused(probe_save(fifo), "is not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_node_is_not_replaced(tmp_path: Path):
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the numbers of /dev/null, in a scratch folder
    except PermissionError:
        pytest.skip("this user may not make device nodes")
    assert_refused(probe_save(node), "is not a regular file")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_a_link_is_not_replaced_nor_followed(tmp_path: Path):
    kept = tmp_path / "kept.json"
    kept.write_text("my profile\n")
    link = tmp_path / "profile.json"
    link.symlink_to(kept)
    assert_refused(probe_save(link), "is a symbolic link")
    assert os.readlink(link) == str(kept) and kept.read_text() == "my profile\n"


def test_a_dangling_link_creates_nothing_at_its_target(tmp_path: Path):
    target = tmp_path / "elsewhere" / "planted.json"
    link = tmp_path / "profile.json"
    link.symlink_to(target)
    assert_refused(probe_save(link), "is a symbolic link")
    assert not os.path.lexists(target) and link.is_symlink()


def test_a_regular_file_is_still_replaced_with_force(tmp_path: Path):
    target = tmp_path / "profile.json"
    target.write_text("old\n")
    proc = probe_save(target)
    assert proc.returncode == 0, proc.stderr
    assert '"gpus"' in target.read_text() and not target.is_symlink()
