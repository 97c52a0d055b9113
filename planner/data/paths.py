"""Where the data folders are: inside an installed wheel (planner/_data/) or at the top of a checkout."""

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # planner/, where the wheel keeps _data/


@cache
def data_dir(name: str) -> Path:
    """Return the folder `name` (hardware_db or templates), from the wheel first, else from the checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"planner's data folder {name!r} is missing from this installation")


def hardware_db() -> Path:
    return data_dir("hardware_db")


def templates() -> Path:
    return data_dir("templates")
