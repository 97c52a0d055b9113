"""The AMX-kernel finding: read from the real installed llama-cpp-python and from library files written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.checks import run_checks
from planner.hardware.llama_cpp_build import AMX_KERNEL_SYMBOL, probe_llama_cpp_python
from planner.types.hardware import Container, Cpu, Disk, Hardware, LlamaCppPythonBuild, Memory

GiB = 1024**3
SAPPHIRE_RAPIDS = Cpu(model="Intel(R) Xeon(R) Platinum 8480+", physical_cores=56, logical_cores=112,
                      flags=["avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16"])  # fmt: skip
ZEN4 = Cpu(model="AMD Ryzen 9 7950X", physical_cores=16, logical_cores=32, flags=["avx2", "avx512f", "avx512_vnni"])


def _package(tmp_path: Path, amx: bool) -> Path:
    lib = tmp_path / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    body = b"\x7fELF" + b"\0" * 4096 + (AMX_KERNEL_SYMBOL if amx else b"ggml_backend_cpu_repack") + b"\0" * 64
    (lib / "libggml-cpu.so").write_bytes(body)
    return tmp_path / "llama_cpp"


@pytest.mark.parametrize("amx", [True, False])
def test_probe_reads_the_kernels_from_the_library_file(tmp_path: Path, amx: bool) -> None:
    build = probe_llama_cpp_python(_package(tmp_path, amx))
    assert build is not None and build.amx_kernels is amx and build.library and build.library.endswith(".so")


def test_the_test_venv_build_is_portable() -> None:
    """scripts/test installs llama-cpp-python with -DGGML_NATIVE=OFF: its CPU library must hold no AMX kernels."""
    pytest.importorskip("llama_cpp")
    build = probe_llama_cpp_python()
    assert build is not None and build.library is not None and build.version
    assert build.amx_kernels is False


def _hardware(cpu: Cpu, build: LlamaCppPythonBuild | None) -> Hardware:
    return Hardware(cpu=cpu, memory=Memory(total_bytes=64 * GiB, available_bytes=60 * GiB),
                    disk=Disk(path="/models", total_bytes=500 * GiB, free_bytes=300 * GiB),
                    container=Container(docker_client=True, engine_reachable=True), llama_cpp_python=build)  # fmt: skip


@pytest.mark.parametrize(
    ("cpu", "amx_kernels", "expected"),
    [(SAPPHIRE_RAPIDS, True, True), (SAPPHIRE_RAPIDS, False, False), (ZEN4, True, False), (ZEN4, False, False)],
)
def test_doctor_warns_only_for_amx_kernels_on_an_amx_cpu(cpu: Cpu, amx_kernels: bool, expected: bool) -> None:
    findings = run_checks(_hardware(cpu, LlamaCppPythonBuild(version="0.3.36", amx_kernels=amx_kernels)))
    found = [f for f in findings.findings if f.id == "llama-cpp-python-amx"]
    assert bool(found) is expected
    if found:
        assert found[0].severity == "warn" and "#20824" in found[0].detail and "0.3.36" in found[0].title
        assert any("GGML_NATIVE=OFF" in c for c in found[0].commands)


def test_no_llama_cpp_python_no_finding() -> None:
    assert not [f for f in run_checks(_hardware(SAPPHIRE_RAPIDS, None)).findings if f.id == "llama-cpp-python-amx"]
