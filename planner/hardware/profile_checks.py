"""Sanity bounds for a hardware profile read from a file (--hardware): what no real machine reports is refused.

The profile is user input: pydantic checks its types, this checks its values. A negative VRAM or core count
planned with exit 0, `compute_capability: "abc"` was an internal error, and a 100 k-character GPU name took
62 s to print in a table. Each problem is one message; the caller turns it into one BadInput line.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel

from planner.types.hardware import Hardware

# Names are printed in tables and plans: the longest real GPU and CPU model strings are under 100 characters
# ("AMD Ryzen Threadripper PRO 7995WX 96-Cores", "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition").
MAX_NAME_CHARS = 256
# Any other text (a process path, an NVML error, a warning sentence): PATH_MAX-sized, far above real values.
MAX_TEXT_CHARS = 4096
# Lists a probe fills: a real host has a few hundred CPU flags, tens of GPU processes and warnings at most.
MAX_LIST_ITEMS = 1024
# All text together: a saved profile holds a few KiB of it. Printing is what costs (rich lays out every warning:
# 256 KiB of them take under a second, 3.6 MB took minutes).
MAX_TOTAL_TEXT_CHARS = 256 * 1024
MAX_GPUS = 64  # what --gpu accepts too (whatif._MAX_GPUS): the solver plans splits across every GPU
_CC = re.compile(r"\d{1,3}(\.\d{1,3})?")  # NVIDIA compute capability as nvidia-smi prints it: "8.6", "12.0"
_NAME_FIELDS = {("gpus", "name"), ("cpu", "model")}


def profile_problem(hardware: Hardware) -> str | None:
    """The first value in `hardware` no real machine would report, described in a few words; None if none."""
    if len(hardware.gpus) > MAX_GPUS:
        return f"gpus: {len(hardware.gpus)} GPUs, planner plans for at most {MAX_GPUS}"
    for gpu in hardware.gpus:
        if gpu.compute_capability is not None and not _CC.fullmatch(gpu.compute_capability):
            return f"gpus.{gpu.index}.compute_capability: {_shown(gpu.compute_capability)} is not like 8.6"
    for field in ("physical_cores", "logical_cores"):
        if getattr(hardware.cpu, field) < 1:
            return f"cpu.{field}: {getattr(hardware.cpu, field)}, a machine has at least one core"
    text_left = [MAX_TOTAL_TEXT_CHARS]
    return _walk(hardware, (), text_left)


def _walk(value: Any, where: tuple[str, ...], text_left: list[int]) -> str | None:
    """Every number non-negative and finite, every text and list within bounds, recursively; `text_left` is the
    shared budget of characters still allowed."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            problem = _walk(getattr(value, name), (*where, name), text_left)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS:
            return f"{_path(where)}: {len(value)} entries, more than any real machine reports ({MAX_LIST_ITEMS})"
        for index, item in enumerate(value):
            problem = _walk(item, (*where, str(index)), text_left)
            if problem:
                return problem
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return f"{_path(where)}: {value} is not a number"
        if value < 0:
            return f"{_path(where)}: {value} is negative"
        return None
    if isinstance(value, str):
        is_name = len(where) <= 3 and (where[0], where[-1]) in _NAME_FIELDS  # gpus.N.name, cpu.model
        limit = MAX_NAME_CHARS if is_name else MAX_TEXT_CHARS
        if len(value) > limit:
            return f"{_path(where)}: {len(value)} characters, more than {limit}"
        text_left[0] -= len(value)
        if text_left[0] < 0:
            return f"{_path(where)}: the profile holds more than {MAX_TOTAL_TEXT_CHARS} characters of text"
    return None


def _path(where: tuple[str, ...]) -> str:
    # gpus.0.name, as pydantic names locations
    return ".".join(where)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")
