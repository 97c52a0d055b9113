"""The host: CPU, RAM, the disk models go to, the OS and docker. Subprocesses get short timeouts and never raise."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

import psutil

from planner.types.hardware import Container, Cpu, Disk, Memory

CPUINFO = Path("/proc/cpuinfo")
OS_RELEASE = Path("/etc/os-release")

# CPU features llama.cpp builds or dispatches on (ggml's GGML_* options and its CPU backend variants), as Linux
# names them in /proc/cpuinfo, mapped to the names planner reports. "pni" is how Linux spells SSE3.
_X86_FLAGS = {
    "pni": "sse3",
    "ssse3": "ssse3",
    "sse4_1": "sse4_1",
    "sse4_2": "sse4_2",
    "avx": "avx",
    "avx2": "avx2",
    "avx_vnni": "avx_vnni",
    "fma": "fma",
    "f16c": "f16c",
    "bmi2": "bmi2",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512vl": "avx512vl",
    "avx512_vbmi": "avx512_vbmi",
    "avx512_vnni": "avx512_vnni",
    "avx512_bf16": "avx512_bf16",
    "amx_tile": "amx_tile",
    "amx_int8": "amx_int8",
    "amx_bf16": "amx_bf16",
}
# ARM "Features" in /proc/cpuinfo: asimd is NEON, asimddp the dot-product extension, asimdhp fp16 arithmetic.
_ARM_FLAGS = {
    "asimd": "neon",
    "asimddp": "dotprod",
    "asimdhp": "fp16",
    "i8mm": "i8mm",
    "sve": "sve",
    "sve2": "sve2",
    "bf16": "bf16",
}
# macOS spells the x86 ones in upper case in machdep.cpu.features / leaf7_features.
_DARWIN_X86_FLAGS = {
    "SSE3": "sse3",
    "SSSE3": "ssse3",
    "SSE4.1": "sse4_1",
    "SSE4.2": "sse4_2",
    "AVX1.0": "avx",
    "AVX2": "avx2",
    "FMA": "fma",
    "F16C": "f16c",
    "BMI2": "bmi2",
    "AVX512F": "avx512f",
    "AVX512BW": "avx512bw",
    "AVX512VL": "avx512vl",
    "AVX512VNNI": "avx512_vnni",
}
# hw.optional.* sysctls on Apple Silicon that say the same as the ARM Linux features above.
_DARWIN_ARM_SYSCTLS = {
    "hw.optional.neon": "neon",
    "hw.optional.arm.FEAT_DotProd": "dotprod",
    "hw.optional.arm.FEAT_FP16": "fp16",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
}

DOCKER_TIMEOUT_S = 2.0
SYSCTL_TIMEOUT_S = 1.0


def probe_cpu(cpuinfo: Path = CPUINFO) -> Cpu:
    system = platform.system()
    machine = platform.machine() or "unknown"
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    if system == "Darwin":
        model, flags = _darwin_cpu(machine)
    else:
        model, flags = _linux_cpu(cpuinfo)
    return Cpu(
        model=model or platform.processor() or machine,
        architecture=_normalise_machine(machine),
        physical_cores=physical,
        logical_cores=logical,
        flags=flags,
    )


def normalise_cpu_flags(raw_flags: list[str]) -> list[str]:
    """Map /proc/cpuinfo flags or Features to the names llama.cpp cares about (sorted, lower case).

    Any of amx_tile/amx_int8/amx_bf16 also reports "amx", and "neon" also reports "asimd", so a check can
    ask for either spelling.
    """
    found = set()
    for flag in raw_flags:
        flag = flag.lower()
        for table in (_X86_FLAGS, _ARM_FLAGS):
            if flag in table:
                found.add(table[flag])
    if found & {"amx_tile", "amx_int8", "amx_bf16"}:
        found.add("amx")
    if "neon" in found:
        found.add("asimd")
    return sorted(found)


def _linux_cpu(cpuinfo: Path) -> tuple[str | None, list[str]]:
    fields = _first_cpuinfo_block(cpuinfo)
    # x86 says "model name"; ARM servers leave it out and say only the implementer/part.
    model = fields.get("model name") or fields.get("hardware") or fields.get("cpu model")
    if not model and "cpu implementer" in fields:
        model = f"ARM CPU (implementer {fields['cpu implementer']}, part {fields.get('cpu part', '?')})"
    raw = (fields.get("flags") or fields.get("features") or "").split()
    return model, normalise_cpu_flags(raw)


def _first_cpuinfo_block(cpuinfo: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if "flags" in fields or "features" in fields:
                break  # the first processor's block is enough: flags are the same on every core
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def _darwin_cpu(machine: str) -> tuple[str | None, list[str]]:
    model = sysctl("machdep.cpu.brand_string")
    if machine == "arm64":
        flags = {name for key, name in _DARWIN_ARM_SYSCTLS.items() if sysctl(key) == "1"}
        if "neon" in flags:
            flags.add("asimd")
        return model, sorted(flags)
    raw = f"{sysctl('machdep.cpu.features') or ''} {sysctl('machdep.cpu.leaf7_features') or ''}".split()
    return model, sorted({_DARWIN_X86_FLAGS[f] for f in raw if f in _DARWIN_X86_FLAGS})


def _normalise_machine(machine: str) -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower())


def probe_memory() -> Memory:
    virtual = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return Memory(
        total_bytes=virtual.total,
        available_bytes=virtual.available,
        swap_total_bytes=swap.total,
        swap_free_bytes=swap.free,
    )


def models_directory() -> Path:
    """Where downloaded models will live: the Hugging Face hub cache, as huggingface_hub resolves it
    (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def probe_disk(path: Path | None = None) -> Disk:
    """Free space where models will be stored; the folder need not exist yet (its first existing parent
    decides which filesystem it will be on)."""
    target = Path(path) if path is not None else models_directory()
    existing = target.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        usage = shutil.disk_usage(existing)
    except OSError:
        return Disk(path=str(target))
    return Disk(path=str(target), total_bytes=usage.total, free_bytes=usage.free)


def probe_os() -> tuple[str, str]:
    """("linux", "Debian GNU/Linux 12 (bookworm), kernel 6.1.0-18-amd64") and the like."""
    system = platform.system().lower() or "unknown"
    if system == "linux":
        pretty = _os_release_name(OS_RELEASE) or "Linux"
        return system, f"{pretty}, kernel {platform.release()}"
    if system == "darwin":
        version = platform.mac_ver()[0]
        return system, f"macOS {version}" if version else "macOS"
    return system, f"{platform.system()} {platform.release()}".strip()


def _os_release_name(path: Path) -> str | None:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"') or None
    return None


def probe_container(timeout_s: float = DOCKER_TIMEOUT_S) -> Container:
    """Docker client, engine and NVIDIA runtime: what `planner deploy --target docker` will need."""
    docker = shutil.which("docker")
    nvidia_tools = [t for t in ("nvidia-ctk", "nvidia-container-toolkit") if shutil.which(t)]
    if docker is None:
        detail = "docker is not installed (not on PATH)"
        if nvidia_tools:
            detail += f"; {nvidia_tools[0]} is on PATH"
        return Container(nvidia_runtime=bool(nvidia_tools), detail=detail)

    version_out = _run([docker, "--version"], timeout_s)
    version = _docker_version(version_out[1]) if version_out and version_out[0] == 0 else None
    info = _run([docker, "info", "--format", "{{json .}}"], timeout_s)
    reachable = False
    runtimes: list[str] = []
    notes = []
    if info is None:
        notes.append(f"`docker info` did not answer within {timeout_s:g} s")
    elif info[0] != 0:
        notes.append(f"docker engine not reachable: {_first_line(info[2]) or 'docker info failed'}")
    else:
        try:
            data = json.loads(info[1])
        except ValueError:
            data = {}
        reachable = bool(data.get("ServerVersion") or data.get("ID"))
        runtimes = sorted((data.get("Runtimes") or {}).keys())
        if not reachable:
            notes.append("docker info returned no engine details")

    if "nvidia" in runtimes:
        nvidia = True
        notes.append("NVIDIA runtime registered with docker (Runtimes: " + ", ".join(runtimes) + ")")
    elif nvidia_tools:
        nvidia = True
        notes.append(f"NVIDIA Container Toolkit present ({nvidia_tools[0]} on PATH)")
    else:
        nvidia = False
        notes.append("no NVIDIA container runtime (install nvidia-container-toolkit for --gpus)")
    return Container(
        docker_client=True,
        docker_version=version,
        engine_reachable=reachable,
        nvidia_runtime=nvidia,
        detail="; ".join(notes),
    )


def _docker_version(text: str) -> str | None:
    # "Docker version 28.2.2, build e6534b4"
    words = text.replace(",", " ").split()
    if "version" in words:
        position = words.index("version") + 1
        if position < len(words):
            return words[position]
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _run(args: list[str], timeout_s: float) -> tuple[int, str, str] | None:
    """Run a short command; None when it cannot start or times out."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.returncode, done.stdout, done.stderr


def sysctl(name: str) -> str | None:
    """One `sysctl -n NAME` value on macOS; None when absent."""
    done = _run(["sysctl", "-n", name], SYSCTL_TIMEOUT_S)
    if done is None or done[0] != 0:
        return None
    return done[1].strip() or None
