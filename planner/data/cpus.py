"""The CPU hardware database: hardware_db/cpus/*.yaml, validated into CpuSpec rows, and name matching.

A what-if machine needs a CPU as much as a GPU: threads, SIMD and host RAM bandwidth set the speed of every weight
left in RAM. Every row names its source (vendor spec pages); a field the source does not give stays empty.
Names match as GPU names do (planner.data.gpus.normalize: case, vendor words and punctuation ignored), plus the
words CPU names carry around the model ("Core", "Processor", "16-Core"), so a probed "AMD Ryzen 9 7950X 16-Core
Processor" and a typed "ryzen 9 7950x" find one row.
"""

from __future__ import annotations

import difflib
import os
import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from planner.data.gpus import normalize
from planner.errors import EnvironmentProblem
from planner.types.hardware import Cpu

Segment = Literal["desktop", "laptop", "hedt", "server", "soc", "board"]
# bytes per transfer of one 64-bit memory channel (DDR4/DDR5 DIMM channel as vendors count them)
_CHANNEL_BYTES = 8


class CpuDatabaseError(EnvironmentProblem):
    """A hardware_db/cpus file is missing, unreadable or has an invalid entry (names the file and the entry)."""


class CpuSpec(BaseModel):
    """One CPU or SoC. Field meanings are in the header of hardware_db/cpus/intel.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    vendor: str = Field(min_length=1)
    segment: Segment
    architecture: Literal["x86_64", "arm64"]
    microarchitecture: str | None = None
    performance_cores: int = Field(gt=0)
    efficiency_cores: int = Field(default=0, ge=0)
    threads: int = Field(gt=0)
    memory_type: str | None = None  # the memory the bandwidth figure is for, e.g. DDR5-5200
    memory_channels: int | None = Field(default=None, gt=0)  # 64-bit channels
    memory_bus_bits: int | None = Field(default=None, gt=0)  # LPDDR SoCs: the bus width their vendor states
    memory_speed_mts: int | None = Field(default=None, gt=0)
    memory_bandwidth_gbs: float | None = Field(default=None, gt=0)  # vendor-stated, else derived (see below)
    simd: list[str] = Field(default_factory=list)  # llama.cpp-relevant flags, names as the probe writes them
    year: int | None = Field(default=None, ge=2010, le=2030)
    implies_gpus: list[str] = Field(default_factory=list)  # GPU DB rows that mean this SoC (Apple, Jetson, GB10)
    notes: str | None = None
    source: str = Field(min_length=10)

    @model_validator(mode="after")
    def _cores_fit_threads(self) -> CpuSpec:
        if self.threads < self.performance_cores + self.efficiency_cores:
            raise ValueError("threads below the core count")
        return self

    @property
    def cores(self) -> int:
        return self.performance_cores + self.efficiency_cores

    def bandwidth(self) -> tuple[float | None, str]:
        """Peak RAM bandwidth in GB/s and how it is known: stated by the source, or bus width x transfer rate."""
        if self.memory_bandwidth_gbs:
            return self.memory_bandwidth_gbs, "stated by the source"
        bus_bytes = self.memory_bus_bits / 8 if self.memory_bus_bits else None
        if bus_bytes is None and self.memory_channels:
            bus_bytes = self.memory_channels * _CHANNEL_BYTES
        if bus_bytes and self.memory_speed_mts:
            gbs = round(bus_bytes * self.memory_speed_mts / 1000, 1)
            return gbs, f"{int(bus_bytes * 8)}-bit x {self.memory_speed_mts} MT/s"
        return None, "not in the source"


def default_directory() -> Path:
    from planner.data.paths import hardware_db

    return hardware_db() / "cpus"


def load_cpus(directory: Path | None = None) -> list[CpuSpec]:
    """All CPU entries of every *.yaml in `directory` (default: the shipped hardware_db/cpus), in file order."""
    return list(_load(Path(directory or default_directory()).resolve()))


@cache
def _load(directory: Path) -> tuple[CpuSpec, ...]:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CpuDatabaseError(f"no CPU database files (*.yaml) in {directory}")
    specs: list[CpuSpec] = []
    for path in files:
        specs.extend(_load_file(path))
    owner: dict[str, str] = {}
    for spec in specs:
        for key in {cpu_key(n) for n in (spec.name, *spec.aliases)}:
            if key in owner and owner[key] != spec.name:
                raise CpuDatabaseError(f"{spec.name!r} and {owner[key]!r} both answer to the name {key!r}")
            owner[key] = spec.name
    return tuple(specs)


def _load_file(path: Path) -> list[CpuSpec]:
    try:
        from planner.data.loader import load_yaml

        document = load_yaml(path)
    except (OSError, yaml.YAMLError) as err:
        raise CpuDatabaseError(f"{path.name}: can't read it: {' '.join(str(err).split())}") from err
    if not isinstance(document, dict) or not isinstance(document.get("cpus"), list):
        raise CpuDatabaseError(f"{path.name}: expected a mapping with a 'cpus' list")
    defaults = document.get("defaults") or {}
    specs = []
    for number, entry in enumerate(document["cpus"], start=1):
        label = f"entry {number}" + (f" ({entry.get('name')!r})" if isinstance(entry, dict) else "")
        if not isinstance(entry, dict):
            raise CpuDatabaseError(f"{path.name}: {label}: expected a mapping")
        try:
            specs.append(CpuSpec.model_validate({**defaults, **entry}))
        except ValidationError as err:
            problem = err.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "entry"
            raise CpuDatabaseError(f"{path.name}: {label}: {where}: {problem['msg']}") from err
    return specs


# ---- names ---------------------------------------------------------------------------------------------------

# Words around a CPU model in probed and typed names: "Intel(R) Core(TM) i3-12100", "AMD Ryzen 9 7950X 16-Core
# Processor", "Ryzen AI 9 HX 370 w/ Radeon 890M".
_CPU_NOISE = {"core", "processor", "cpu", "soc", "with", "w", "computer", "model", "broadcom", "qualcomm", "arm"}


def cpu_key(name: str) -> str:
    """The matching key of a CPU name: "Intel(R) Core(TM) i3-12100" -> "i3 12100"."""
    # AMD's brand strings end in "16-Core Processor" (the count is in the model already); Apple's "(14-core CPU)"
    # tells variants apart and stays
    text = re.sub(r"\b\d+-core processor\b", "processor", name.lower())
    text = re.sub(r"\bw/\s*radeon.*$|\bwith radeon.*$", "", text)  # the iGPU an APU's name ends with
    text = re.sub(r"\b\d+th gen\b", "", text)  # "12th Gen Intel(R) Core(TM) i3-12100"
    text = re.sub(r"(\d+)-core", r"\1core", text)
    words = normalize(text).split()
    return " ".join(w for w in words if w not in _CPU_NOISE)


@cache
def _index(directory: Path | None) -> dict[str, CpuSpec]:
    index: dict[str, CpuSpec] = {}
    for spec in load_cpus(directory):
        for written in (spec.name, *spec.aliases):
            index.setdefault(cpu_key(written), spec)
    return index


def match_cpu(name: str, *, directory: Path | None = None) -> CpuSpec | None:
    """The database row for a CPU name as /proc/cpuinfo, sysctl or a person writes it; None when unknown."""
    key = cpu_key(name)
    if not key:
        return None
    return _index(Path(directory).resolve() if directory else None).get(key)


def cpu_for_gpu(gpu_name: str, *, directory: Path | None = None) -> CpuSpec | None:
    """The SoC a GPU implies (an Apple chip, a Jetson module, GB10): the row listing that GPU DB name."""
    return next((s for s in load_cpus(directory) if gpu_name in s.implies_gpus), None)


def closest_cpu_names(query: str, n: int = 3, *, directory: Path | None = None) -> list[str]:
    """Display names most like `query`, scored as planner.data.gpus.closest_names scores GPU names (similarity plus
    a bonus for a shared beginning)."""
    index = _index(Path(directory).resolve() if directory else None)
    wanted = cpu_key(query)
    if not wanted:
        return []

    def score(key: str) -> float:
        prefix = len(os.path.commonprefix([wanted, key]))
        return difflib.SequenceMatcher(None, wanted, key).ratio() + 0.5 * prefix / len(wanted)

    result: list[str] = []
    for key in sorted(index, key=score, reverse=True):
        if score(key) < 0.6:
            break
        if index[key].name not in result:
            result.append(index[key].name)
        if len(result) == n:
            break
    return result


def cpu_from_spec(spec: CpuSpec, *, source: str) -> Cpu:
    """The Hardware model's Cpu for a database row; `source` says why this CPU was chosen."""
    bandwidth, _how = spec.bandwidth()
    return Cpu(
        model=spec.name,
        architecture=spec.architecture,
        physical_cores=spec.cores,
        logical_cores=spec.threads,
        performance_cores=spec.performance_cores,
        flags=sorted(spec.simd),
        memory_bandwidth_gbs=bandwidth,
        db_match=spec.name,
        source=source,
    )


def enrich_cpu(cpu: Cpu, *, directory: Path | None = None) -> Cpu:
    """A probed CPU with what its database row adds: which cores llama.cpp computes on (a hybrid Intel part's
    P-cores). Only when the probe sees the whole chip (its core count is the row's): a VM or container given a few
    cores keeps what it was given. RAM bandwidth is not taken from the row: it is the board's, not the chip's."""
    spec = match_cpu(cpu.model, directory=directory)
    if spec is None or spec.cores != cpu.physical_cores:
        return cpu
    return cpu.model_copy(update={"performance_cores": spec.performance_cores, "db_match": spec.name})
