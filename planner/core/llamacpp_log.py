"""Read llama.cpp's own memory report from its log: the buffers it allocated, by kind and device.

Used to check estimates against reality (bench/memory_vs_llamacpp.py, tests) and by deploy to compare a launched
server with its plan. Line formats: shared research llamacpp-memory.md section 4 (b3990 to b10470 spellings).
"""

from __future__ import annotations

import re

_BUFFER = re.compile(r"(\S+)\s+(model|KV|RS|compute|output) buffer size =\s+([\d.]+) MiB")
_DEVICE = re.compile(r"(CUDA|ROCm|Vulkan|Metal|MUSA|SYCL)\d")
_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")


def parse_buffers(log: str) -> dict[str, float]:
    """Sum the logged buffers (MiB) into model/kv/compute/output x gpu/host, e.g. {"model_gpu": 1052.66}.

    Repeated lines add up (one CPU_Mapped line per split file, one KV line per cache of an SWA model, one line per
    GPU); the teardown echo `~llama_context: ... compute buffer size is` is skipped.
    """
    sums: dict[str, float] = {}
    for line in log.splitlines():
        if "~llama_context" in line:
            continue
        match = _BUFFER.search(line)
        if not match:
            continue
        device, kind, mib = match.group(1), match.group(2).lower(), float(match.group(3))
        where = "gpu" if _DEVICE.match(device) else "host"
        kind = "kv" if kind in ("kv", "rs") else kind
        key = f"{kind}_{where}"
        sums[key] = sums.get(key, 0.0) + mib
    return sums


def offloaded_layers(log: str) -> tuple[int, int] | None:
    """(offloaded, total) from `offloaded X/Y layers to GPU`, or None."""
    match = _OFFLOADED.search(log)
    return (int(match.group(1)), int(match.group(2))) if match else None
