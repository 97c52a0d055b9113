"""Apple Silicon: one GPU that shares the machine's RAM (unified memory). [] anywhere else; never raises."""

from __future__ import annotations

import platform

from planner.hardware.host import sysctl
from planner.types.hardware import Gpu


def probe_apple() -> list[Gpu]:
    if platform.system() != "Darwin" or platform.machine() != "arm64":
        return []
    memory = sysctl("hw.memsize")
    if memory is None or not memory.isdigit():
        return []
    # The chip's name ("Apple M2 Max") names its GPU too. The probe reports all of RAM as the fact; Metal lets
    # the GPU wire only part of it (recommendedMaxWorkingSetSize), which planning has to allow for.
    name = sysctl("machdep.cpu.brand_string") or "Apple Silicon"
    return [
        Gpu(
            index=0,
            name=name,
            vendor="apple",
            architecture="Apple Silicon",
            memory_total_bytes=int(memory),
            unified_memory=True,
        )
    ]
