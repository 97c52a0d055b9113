"""What the installed llama-cpp-python was built with, read from its files (the library is never loaded).

Loading libggml-cpu would cost start-up time and, on a host where its kernels crash, could take planner down with
it; the kernels a build holds are plain to see as symbol names in the file.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from planner.types.hardware import LlamaCppPythonBuild

# Defined only when ggml-cpu was compiled with AMX-INT8 and AVX512-VNNI (ggml/src/ggml-cpu/amx/mmq.cpp).
AMX_KERNEL_SYMBOL = b"ggml_backend_amx_mul_mat"


def _cpu_library(package_dir: Path) -> Path | None:
    """libggml-cpu as the wheel ships it (lib/libggml-cpu.so, .dylib or .dll), the first one found."""
    for pattern in ("lib/libggml-cpu.so*", "lib/libggml-cpu.dylib", "lib/ggml-cpu.dll", "lib/libggml-cpu*.so*"):
        found = sorted(p for p in package_dir.glob(pattern) if p.is_file())
        if found:
            return found[0]
    return None


def probe_llama_cpp_python(package_dir: Path | None = None) -> LlamaCppPythonBuild | None:
    """None when llama-cpp-python is not installed; otherwise its version and whether it holds the AMX kernels."""
    if package_dir is None:
        spec = importlib.util.find_spec("llama_cpp")  # finds the package without importing it
        if spec is None or spec.origin is None:
            return None
        package_dir = Path(spec.origin).parent
    try:
        version: str | None = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        version = None
    library = _cpu_library(package_dir)
    if library is None:
        return LlamaCppPythonBuild(version=version)
    try:
        amx = AMX_KERNEL_SYMBOL in library.read_bytes()
    except OSError:
        return LlamaCppPythonBuild(version=version, library=str(library))
    return LlamaCppPythonBuild(version=version, amx_kernels=amx, library=str(library))
