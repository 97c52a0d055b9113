"""Hold GPU memory so that only FREE_MIB stays free (through the CUDA driver API: no torch needed), until killed.

    python bench/hold_gpu_memory.py FREE_MIB

Used by bench/squeeze_runs.py to give planner a card with little free memory, as a desktop session or another
process would, and check that the plan it makes for the probed free memory really loads and leaves little idle.
"""

from __future__ import annotations

import ctypes
import sys
import time

MiB = 1 << 20


def main() -> int:
    leave = int(sys.argv[1]) * MiB
    cuda = ctypes.CDLL("libcuda.so.1")
    device, context, pointer = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    assert cuda.cuInit(0) == 0 and cuda.cuDeviceGet(ctypes.byref(device), 0) == 0
    assert cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device) == 0
    assert cuda.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)) == 0
    size = max(0, free.value - leave)
    rc = cuda.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(size))
    cuda.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total))
    print(f"held {size // MiB} MiB (rc {rc}); free now {free.value // MiB} MiB of {total.value // MiB}", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    sys.exit(main())
