"""Reading sysfs/procfs files that may be missing or unreadable: None instead of an exception."""

from __future__ import annotations

from pathlib import Path


def read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_int(path: Path, base: int = 10) -> int | None:
    text = read_text(path)
    try:
        return int(text, base) if text else None
    except ValueError:
        return None
