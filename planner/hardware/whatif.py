"""What-if hardware: --gpu / --cpu / --ram / --cpu-cores / --ram-bandwidth / --hardware turned into the Hardware the
planner plans for.

Nothing given: probe this machine. --hardware FILE: a profile saved by `planner probe --save`. --gpu replaces the
GPUs with database entries and makes the machine a what-if one: its CPU is never this machine's (whose thread
count and RAM bandwidth say nothing about the other box) but --cpu's row, else the SoC the GPU implies (an Apple
chip, GB10), else the --hardware profile's own CPU, else a stated default row. --cpu alone replaces only the CPU;
--ram, --cpu-cores and --ram-bandwidth replace those facts; everything not overridden stays as probed (or as the
file says).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from planner.data.cpus import CpuSpec, closest_cpu_names, cpu_for_gpu, cpu_from_spec, match_cpu
from planner.data.gpus import GpuSpec, closest_names, gpu_from_spec, resolve_gpu_name
from planner.errors import BadInput
from planner.types.hardware import Cpu, Hardware, Memory
from planner.types.units import parse_size

_CPU_ONLY = {"none", "cpu", "no", "0"}
_COUNT_FIRST = re.compile(r"^\s*(\d+)\s*[x×*]\s*(.+?)\s*$", re.IGNORECASE)
_COUNT_LAST = re.compile(r"^\s*(.+?)\s+[x×*]\s*(\d+)\s*$", re.IGNORECASE)  # "RTX 3090 x2"
_MAX_GPUS = 64
# The CPU of a what-if GPU machine nobody named: a current 6-core desktop part (hardware_db/cpus/intel.yaml), so
# the plan neither borrows this machine's cores nor assumes a workstation. The plan says it was assumed.
DEFAULT_WHATIF_CPU = "Core i5-12400"
_BANDWIDTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gb|gib|mb|mib)\s*/\s*s\s*$", re.IGNORECASE)
_BANDWIDTH_UNITS = {"gb": 1.0, "gib": 2**30 / 1e9, "mb": 1e-3, "mib": 2**20 / 1e9}
_MAX_PROFILE_BYTES = 4 << 20  # a saved profile is a few KiB; anything this big is some other file
_NOT_A_PROFILE = "not a hardware profile saved by `planner probe --save`"


def parse_gpu_arg(text: str) -> list[GpuSpec]:
    """Database entries for one --gpu value: "Tesla P4", "2x RTX 3090", "RTX 3090 x2", "P4, P40"; "none" -> [].

    A board that holds several GPUs (Tesla K80, A16, MI250X) counts as the devices nvidia-smi or ROCm would list.
    """
    return parse_gpu_arg_with_notes(text)[0]


def parse_gpu_arg_with_notes(text: str) -> tuple[list[GpuSpec], list[str]]:
    """parse_gpu_arg, with what the user should know about each name: the variant picked, a custom size."""
    if not text.strip(" ,"):
        # Most often an unset shell variable (--gpu "$GPU"): planning for no GPU would be a silent surprise.
        raise BadInput("--gpu '' names no GPU; give a name such as \"Tesla P4\", or 'none' for CPU only")
    specs: list[GpuSpec] = []
    notes: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part.lower() in _CPU_ONLY:
            continue
        count, name = _split_count(part)
        try:
            found = resolve_gpu_name(name)
        except ValueError as err:
            raise BadInput(str(err)) from None
        if found is None:
            close = closest_names(name)
            hint = f"closest: {', '.join(close)}" if close else "see `planner gpus` for the cards planner knows"
            raise BadInput(f"unknown GPU {name!r}; {hint}")
        specs.extend([found.spec] * (count * found.spec.devices_per_board))
        notes += [n for n in found.notes if n not in notes]
    if len(specs) > _MAX_GPUS:
        raise BadInput(f"--gpu {text!r} asks for {len(specs)} GPUs; planner plans for at most {_MAX_GPUS}")
    return specs, notes


def parse_cpu_arg(text: str) -> CpuSpec:
    """The database row for one --cpu value, matched as --gpu names are; unknown -> one line with the closest."""
    if not text.strip():
        raise BadInput('--cpu \'\' names no CPU; give a name such as "Ryzen 9 7950X" or "Raspberry Pi 5"')
    spec = match_cpu(text)
    if spec is None:
        close = closest_cpu_names(text)
        hint = f"closest: {', '.join(close)}" if close else "hardware_db/cpus lists the CPUs planner knows"
        raise BadInput(f"unknown CPU {text.strip()!r}; {hint}")
    return spec


def parse_bandwidth(text: str) -> float:
    """GB/s from "20GB/s", "20 GB/s", "19.5GiB/s", "800MB/s"; bad -> BadInput."""
    found = _BANDWIDTH.match(text)
    if not found or float(found.group(1)) <= 0:
        raise BadInput(f"--ram-bandwidth {text!r}: write it like 20GB/s")
    return float(found.group(1)) * _BANDWIDTH_UNITS[found.group(2).lower()]


def _split_count(part: str) -> tuple[int, str]:
    for pattern, count_group, name_group in ((_COUNT_FIRST, 1, 2), (_COUNT_LAST, 2, 1)):
        found = pattern.match(part)
        if found:
            count = int(found.group(count_group))
            if count < 1:
                raise BadInput(f"--gpu {part!r}: the count must be at least 1 (use 'none' for CPU only)")
            if count > _MAX_GPUS:  # checked before multiplying: a 20-digit count must not reach list arithmetic
                raise BadInput(f"--gpu {part!r} asks for {count} GPUs; planner plans for at most {_MAX_GPUS}")
            return count, found.group(name_group)
    return 1, part


def load_hardware_file(path: Path) -> Hardware:
    """A Hardware profile saved by `planner probe --save`; any problem is one BadInput line."""
    path = Path(path).expanduser()
    try:
        if not path.is_file() and path.exists():  # a folder, /dev/zero, a FIFO: reading it would fail or never end
            raise BadInput(f"--hardware {path}: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(_MAX_PROFILE_BYTES + 1)
    except FileNotFoundError:
        raise BadInput(f"--hardware {path}: no such file") from None
    except OSError as err:
        raise BadInput(f"--hardware {path}: can't read it ({err.strerror or err})") from None
    if len(data) > _MAX_PROFILE_BYTES:
        raise BadInput(f"--hardware {path}: {_NOT_A_PROFILE} (larger than {_MAX_PROFILE_BYTES >> 20} MiB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"--hardware {path}: {_NOT_A_PROFILE} (not UTF-8 text)") from None
    try:
        hardware = Hardware.model_validate_json(text)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        detail = f"{where}: {problem['msg']}" if where else problem["msg"]
        raise BadInput(f"--hardware {path}: {_NOT_A_PROFILE} ({detail})") from None
    from planner.hardware.profile_checks import profile_problem

    impossible = profile_problem(hardware)
    if impossible:
        raise BadInput(f"--hardware {path}: impossible value in the profile ({impossible})")
    return hardware.model_copy(update={"source": "file"})


def resolve_hardware(
    gpu: list[str] | None,
    ram: str | None,
    cpu_cores: int | None,
    hardware_file: Path | None,
    *,
    container: bool = True,
    cpu: str | None = None,
    ram_bandwidth: str | None = None,
) -> Hardware:
    """The hardware to plan for: probed or loaded from a file, then overridden by the what-if options.

    `container=False` skips asking docker (plan does not need it); GPUs are not probed when --gpu replaces them.
    """
    for value in gpu or []:
        parse_gpu_arg(value)  # a mistyped --gpu fails at once, before the probe
    if ram is not None:
        parse_size(ram)
    if cpu is not None:
        parse_cpu_arg(cpu)
    if ram_bandwidth is not None:
        parse_bandwidth(ram_bandwidth)
    if hardware_file is not None:
        base = load_hardware_file(hardware_file)
    else:
        from planner.hardware.probe import probe_hardware  # probing is slow and optional: only when needed

        base = probe_hardware(gpus=gpu is None, container=container)
    if gpu is None and ram is None and cpu_cores is None and cpu is None and ram_bandwidth is None:
        return base
    return apply_what_if(base, gpu=gpu, ram=ram, cpu_cores=cpu_cores, cpu=cpu, ram_bandwidth=ram_bandwidth)


def apply_what_if(
    base: Hardware,
    *,
    gpu: list[str] | None = None,
    ram: str | None = None,
    cpu_cores: int | None = None,
    cpu: str | None = None,
    ram_bandwidth: str | None = None,
) -> Hardware:
    """`base` with its GPUs, CPU, RAM, core count or RAM bandwidth replaced (pure: no probing, `base` unchanged)."""
    hardware = base.model_copy(deep=True)
    notes: list[str] = []
    specs: list[GpuSpec] = []
    if gpu is not None:
        specs = []
        for value in gpu:
            found, gpu_notes = parse_gpu_arg_with_notes(value)
            specs += found
            notes += [n for n in gpu_notes if n not in notes]
        hardware.gpus = [gpu_from_spec(spec, index) for index, spec in enumerate(specs)]
        names = ", ".join(g.name for g in hardware.gpus) or "no GPU"
        notes.append(f"what-if GPUs from planner's hardware database: {names}")
        unified = [spec for spec in specs if spec.unified_memory]
        if unified:
            _become_unified_memory_machine(hardware, unified[0], ram_given=ram is not None)
    # a saved profile (--hardware) names its own host, which a --gpu keeps unless the GPU is a SoC's; a probed base
    # is this machine, whose CPU says nothing about the machine the GPUs describe
    soc = any(cpu_for_gpu(spec.name) for spec in specs)
    if cpu is not None or (gpu is not None and (base.source != "file" or soc)):
        hardware.cpu, note = _what_if_cpu(cpu, specs)
        notes.append(note)
    if ram_bandwidth is not None:
        gbs = parse_bandwidth(ram_bandwidth)
        hardware.cpu = hardware.cpu.model_copy(update={"memory_bandwidth_gbs": round(gbs, 2)})
        notes.append(f"what-if RAM bandwidth: {gbs:g} GB/s")
    if ram is not None:
        total = parse_size(ram)
        hardware.memory = Memory(total_bytes=total, available_bytes=total)
        notes.append(f"what-if RAM: {ram.strip()}")
    if cpu_cores is not None:
        if cpu_cores < 1:
            raise BadInput("--cpu-cores must be at least 1")
        current = hardware.cpu
        known_ratio = current.logical_cores // current.physical_cores if current.physical_cores else 0
        threads_per_core = known_ratio if base.source != "what-if" and known_ratio >= 1 else 2
        hardware.cpu = current.model_copy(
            update={
                "model": f"{cpu_cores}-core CPU (what-if; was {current.model})",
                "physical_cores": cpu_cores,
                "logical_cores": cpu_cores * threads_per_core,
                "performance_cores": None,  # the cores named are the cores computed on
            }
        )
        notes.append(f"what-if CPU: {cpu_cores} physical cores")
    hardware.source = "what-if"
    hardware.warnings = [*hardware.warnings, *notes]
    return hardware


def _what_if_cpu(cpu: str | None, gpus: list[GpuSpec]) -> tuple[Cpu, str]:
    """The CPU of a what-if machine and the note saying where it came from: --cpu, the GPU's SoC, or the default."""
    if cpu is not None:
        spec = parse_cpu_arg(cpu)
        return cpu_from_spec(spec, source="what-if: --cpu"), f"what-if CPU: {_describe(spec)} (--cpu)"
    for gpu in gpus:
        soc = cpu_for_gpu(gpu.name)
        if soc is not None:
            note = f"what-if CPU: {_describe(soc)}, the SoC of the {gpu.name} (another part: --cpu NAME)"
            return cpu_from_spec(soc, source="what-if: platform"), note
    default = match_cpu(DEFAULT_WHATIF_CPU)
    assert default is not None, "the default what-if CPU must be in hardware_db/cpus"
    note = (
        f"what-if CPU: {_describe(default)}, planner's default for a machine named only by its GPUs, not this "
        "machine's CPU (give --cpu NAME or --ram-bandwidth for the real one)"
    )
    return cpu_from_spec(default, source="what-if: default"), note


def _describe(spec: CpuSpec) -> str:
    cores = (
        f"{spec.performance_cores} performance + {spec.efficiency_cores} efficiency cores"
        if spec.efficiency_cores
        else f"{spec.performance_cores} cores"
    )
    bandwidth, how = spec.bandwidth()
    ram = (
        f", RAM {bandwidth:g} GB/s ({spec.memory_type or 'memory'}: {how})" if bandwidth else ", RAM bandwidth unknown"
    )
    return f"{spec.name} ({cores}{ram})"


def _become_unified_memory_machine(hardware: Hardware, spec: GpuSpec, *, ram_given: bool) -> None:
    """An Apple chip (or DGX Spark) is the whole machine: its memory is the host RAM, and Apple means macOS."""
    if not ram_given:
        size = int(spec.vram_bytes)
        hardware.memory = Memory(total_bytes=size, available_bytes=size)
    if spec.vendor == "apple":
        hardware.os = "darwin"
        hardware.os_release = None
        hardware.cpu = hardware.cpu.model_copy(update={"architecture": "arm64", "flags": []})
        hardware.warnings.append(
            "Apple unified memory: by default macOS lets Metal wire only part of it (recommendedMaxWorkingSetSize; "
            "published measurements: 10.67 GB of 16 GB, 107.52 GiB of 128 GiB); sysctl iogpu.wired_limit_mb raises it"
        )
