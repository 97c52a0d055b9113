"""The host probe on this machine, for real: CPU, RAM, disk, OS, docker, and the other GPU vendors."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from planner.hardware import amd, apple, host, intel
from planner.hardware.probe import probe_hardware

LINUX = platform.system() == "Linux"


def _meminfo_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def test_cpu_and_memory_match_the_os() -> None:
    cpu = host.probe_cpu()
    assert cpu.logical_cores == os.cpu_count()
    assert 1 <= cpu.physical_cores <= cpu.logical_cores
    assert cpu.model and cpu.model != "unknown CPU"
    memory = host.probe_memory()
    if LINUX:
        assert memory.total_bytes == _meminfo_total_bytes()
    assert 0 < memory.available_bytes <= memory.total_bytes


@pytest.mark.skipif(not LINUX, reason="reads /proc/cpuinfo")
def test_cpu_flags_come_from_proc_cpuinfo() -> None:
    raw = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            raw = set(value.split())
            break
    flags = host.probe_cpu().flags
    assert flags == sorted(flags) and all(f == f.lower() for f in flags)
    # Each reported flag has its Linux spelling in /proc/cpuinfo (SSE3 is "pni" there, NEON is "asimd").
    spelling = {"sse3": "pni", "neon": "asimd", "dotprod": "asimddp", "fp16": "asimdhp", "asimd": "asimd"}
    for flag in flags:
        if flag != "amx":
            assert spelling.get(flag, flag) in raw, flag
    for flag in ("avx", "avx2", "fma", "f16c", "ssse3", "avx512f"):
        assert (flag in flags) == (flag in raw)


def test_flag_normalisation_adds_umbrella_names() -> None:
    # Kernel spellings from Sapphire Rapids (AMX) and Neoverse (ARM) cpuinfo lines.
    assert "amx" in host.normalise_cpu_flags(["amx_bf16", "amx_tile", "amx_int8", "avx512_bf16"])
    assert host.normalise_cpu_flags(["fp", "asimd", "asimddp", "sve", "i8mm"]) == [
        "asimd",
        "dotprod",
        "i8mm",
        "neon",
        "sve",
    ]
    assert host.normalise_cpu_flags(["pni", "ssse3", "sse"]) == ["sse3", "ssse3"]


def test_disk_is_measured_at_the_first_existing_parent(tmp_path: Path) -> None:
    models = tmp_path / "not" / "yet" / "there"
    disk = host.probe_disk(models)
    assert disk.path == str(models)
    assert disk.total_bytes == shutil.disk_usage(tmp_path).total
    assert disk.free_bytes is not None and 0 < disk.free_bytes <= disk.total_bytes


def test_disk_defaults_to_the_hugging_face_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert host.probe_disk().path == str(tmp_path / "hub")


def test_os_is_named() -> None:
    name, release = host.probe_os()
    assert name == platform.system().lower()
    if LINUX:
        assert platform.release() in release


def _write_fake_docker(folder: Path, script: str) -> None:
    docker = folder / "docker"
    docker.write_text("#!/bin/sh\n" + script)
    docker.chmod(0o755)


def test_docker_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    container = host.probe_container()
    assert container.docker_client is False and container.engine_reachable is False
    assert container.nvidia_runtime is False
    assert "not installed" in (container.detail or "")


def test_docker_that_hangs_does_not_hang_the_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _write_fake_docker(tmp_path, "exec sleep 30\n")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    started = time.monotonic()
    container = host.probe_container(timeout_s=0.5)
    assert time.monotonic() - started < 3
    assert container.docker_client is True and container.engine_reachable is False
    assert "did not answer" in (container.detail or "")


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed")
def test_real_docker_client_agrees_with_itself() -> None:
    container = host.probe_container()
    version = subprocess.run(["docker", "--version"], capture_output=True, text=True, timeout=5).stdout
    assert container.docker_client is True
    assert container.docker_version and container.docker_version in version
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=10)
    assert container.engine_reachable == (info.returncode == 0)


def test_other_vendors_absent_here_return_nothing(tmp_path: Path) -> None:
    assert amd.probe_amd(drm=tmp_path / "drm", kfd_nodes=tmp_path / "kfd") == []
    warnings: list[str] = []
    assert intel.probe_intel(warnings, pci_devices=tmp_path / "pci") == [] and warnings == []
    if platform.system() != "Darwin":
        assert apple.probe_apple() == []


def test_amd_gfx_target_names() -> None:
    # KFD gfx_target_version values of real parts: MI250X (gfx90a), MI300X (gfx942), RX 7900 XTX (gfx1100).
    assert amd.gfx_target_name(90010) == "gfx90a"
    assert amd.gfx_target_name(90402) == "gfx942"
    assert amd.gfx_target_name(110000) == "gfx1100"


def test_whole_probe_is_fast() -> None:
    probe_hardware()  # first call pays the imports
    timings = []
    for _ in range(2):
        started = time.monotonic()
        hardware = probe_hardware()
        timings.append(time.monotonic() - started)
    assert min(timings) < 1.0, timings
    assert hardware.source == "probe" and hardware.os == platform.system().lower()
