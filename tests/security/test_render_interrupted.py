"""A render cut short by a failed write (a full disk) must not make the next run think the user edited files.

The failure is injected where the bytes go to disk (planner's atomic_write) at every write of a render in turn:
each rendered file and each save of the manifest. After each, a plain rerun (no --force) must go through.
"""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import pytest
from deploy.conftest import TESLA_P4, make_plan

from planner.serving import files
from planner.serving.artifacts import render_artifacts

ROOT = Path(__file__).resolve().parents[2]
SMOL = ROOT / "tests" / "fixtures" / "cache" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def render(out: Path, port: int, target: str) -> files.ManagedWriter:
    rendered = render_artifacts(make_plan(SMOL, [TESLA_P4]), model_files=[str(SMOL)], out_dir=out, port=port,
                                target=target)  # fmt: skip
    assert rendered.backups == []  # nothing was taken for a user's edit
    return rendered


class DiskFull:
    """atomic_write that fails like a full disk on its `fail_at`-th call (0-based) or on a file of that name."""

    def __init__(self, real, fail_at: int | str | None) -> None:  # noqa: ANN001
        self.real, self.fail_at, self.calls = real, fail_at, 0

    def __call__(self, path: Path, data: bytes, mode: int = 0o644) -> None:
        call, self.calls = self.calls, self.calls + 1
        if self.fail_at in (call, Path(path).name):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        self.real(path, data, mode)


def manifest_matches_disk(out: Path) -> bool:
    data = json.loads((out / files.MANIFEST).read_text())
    on_disk = {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in data["files"]}
    return "pending" not in data and on_disk == data["files"]


@pytest.mark.parametrize("target", ["compose", "command", "systemd"])
def test_a_rerun_after_a_failed_write_is_not_refused_as_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
):
    counter = DiskFull(files.atomic_write, None)
    render(tmp_path / "count", 8080, target)
    monkeypatch.setattr(files, "atomic_write", counter)
    render(tmp_path / "count", 9090, target)  # how many writes the failing render below makes
    writes = counter.calls
    assert writes >= 2  # the changed file(s) and the manifest at least

    for fail_at in range(writes):
        out = tmp_path / f"fail-{fail_at}"
        monkeypatch.setattr(files, "atomic_write", counter.real)
        render(out, 8080, target)  # an earlier, complete render
        monkeypatch.setattr(files, "atomic_write", DiskFull(counter.real, fail_at))
        with pytest.raises(OSError, match="No space left"):
            render(out, 9090, target)  # a new port: every file's content changes; the disk fills part-way
        monkeypatch.setattr(files, "atomic_write", counter.real)
        render(out, 9090, target)  # the same command once space is freed: no "changed since planner wrote it"
        assert manifest_matches_disk(out), fail_at
        render(out, 7070, target)  # and any later render
        assert manifest_matches_disk(out), fail_at


def test_a_file_the_user_edited_is_still_refused_after_a_failed_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from planner.errors import BadInput

    out = tmp_path / "out"
    render(out, 8080, "compose")
    monkeypatch.setattr(files, "atomic_write", DiskFull(files.atomic_write, "compose.yml"))
    with pytest.raises(OSError):
        render(out, 9090, "compose")
    monkeypatch.undo()
    (out / "compose.yml").write_text("# mine now\n")
    with pytest.raises(BadInput, match="compose.yml changed since planner wrote it"):
        render(out, 9090, "compose")
