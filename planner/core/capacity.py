"""How much of each device a plan may use: the safety margin, the Metal working set, the host's share of RAM.

Pure rules over Hardware; the search asks them for every configuration it tries.
"""

from __future__ import annotations

from math import log2

from planner.core.memory import MiB
from planner.types.hardware import Gpu, Hardware
from planner.types.plan import MemoryUse

HOST_OS_RESERVE = 1024 * MiB  # what the OS and other programs keep when RAM is given as a what-if total


def default_margin(gpu: Gpu) -> int:
    """Safety margin kept free per GPU: 3 % of VRAM, at least 256 MiB (fragmentation, driver spikes) and at most
    1 GiB (llama.cpp's own --fit margin; more would leave a big card idle)."""
    return min(1024 * MiB, max(256 * MiB, int(gpu.memory_total_bytes * 0.03)))


def margins_for(hw: Hardware, margin_bytes: int | None) -> list[int]:
    """The margin of every GPU: the user's --margin, else the default for that card."""
    return [margin_bytes if margin_bytes is not None else default_margin(g) for g in hw.gpus]


def metal_working_set_share(total_bytes: int) -> float:
    """Share of unified memory macOS lets Metal wire by default (recommendedMaxWorkingSetSize), interpolated in
    log2(size) between the two published measurements: 10.67 GB of 16 GB (0.667) and 107.52 GiB of 128 GiB (0.84)."""
    gib = total_bytes / 1024**3
    if gib <= 16:
        return 0.667
    if gib >= 128:
        return 0.84
    return 0.667 + (0.84 - 0.667) * (log2(gib) - 4) / 3


def gpu_capacity(gpu: Gpu) -> int:
    """What a GPU can hold for llama.cpp: free memory, or the Metal working set of Apple unified memory."""
    if gpu.unified_memory and gpu.vendor == "apple":
        return int(gpu.memory_total_bytes * metal_working_set_share(gpu.memory_total_bytes))
    return gpu.usable_bytes


def host_capacity(hw: Hardware) -> int:
    """RAM a plan may use: what is available now on a probed machine, the total less the OS's share otherwise."""
    if hw.source == "probe":
        return hw.memory.available_bytes
    return max(0, hw.memory.total_bytes - HOST_OS_RESERVE)


def gpu_room(hw: Hardware, margins: list[int]) -> int:
    """Every GPU's capacity less its margin, summed: the most any plan can put on the GPUs."""
    return sum(max(0, gpu_capacity(g) - m) for g, m in zip(hw.gpus, margins))


def reachable_bytes(hw: Hardware, margins: list[int]) -> int:
    """A file bigger than this fits nowhere on the machine: GPU room plus host RAM."""
    return gpu_room(hw, margins) + host_capacity(hw)


def fits(memory: MemoryUse, host_cap: int, unified: bool = False) -> bool:
    """Every device within its capacity, and the host within RAM."""
    if any(d.total_bytes > d.capacity_bytes for d in memory.devices):
        return False
    if unified:  # the GPU's share and the host's share come out of the same RAM
        return memory.host.total_bytes + sum(d.total_bytes for d in memory.devices) <= host_cap
    # mmap'd host weights are page cache: they must fit too, or every token re-reads them from disk
    return memory.host.total_bytes <= host_cap
