"""The Hardware model: one pydantic object that probe prints, --hardware loads, and plan/doctor consume.

Field names are a JSON contract (issue #2): add fields freely, never rename.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, computed_field

Vendor = Literal["nvidia", "amd", "intel", "apple", "other"]


class GpuProcess(BaseModel):
    pid: int
    name: str
    used_memory_bytes: int | None = None


class Gpu(BaseModel):
    """One accelerator, probed or taken from the hardware database."""

    index: int = 0
    name: str
    vendor: Vendor = "nvidia"
    uuid: str | None = None
    architecture: str | None = None
    compute_capability: str | None = None  # "6.1" for NVIDIA; AMD uses gfx_target instead
    gfx_target: str | None = None
    memory_total_bytes: int
    memory_free_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_reserved_bytes: int | None = None  # held by the driver, outside used/free (NVML memory v2)
    memory_bandwidth_gbs: float | None = None
    fp32_tflops: float | None = None  # for the prompt-speed model
    fp16_tflops: float | None = None  # dense FP16 (tensor cores where present)
    fp16: bool | None = None
    fp16_crippled: bool | None = None
    bf16: bool | None = None
    tensor_cores: bool | None = None
    unified_memory: bool = False  # Apple Silicon, DGX Spark: GPU shares host RAM
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # the CUDA version the driver supports, e.g. "12.2"
    pcie_gen_current: int | None = None
    pcie_gen_max: int | None = None
    pcie_width_current: int | None = None
    pcie_width_max: int | None = None
    power_limit_watts: float | None = None
    power_draw_watts: float | None = None
    temperature_c: int | None = None
    throttle_reasons: list[str] = Field(default_factory=list)
    persistence_mode: bool | None = None
    ecc_errors_uncorrected: int | None = None
    mig_enabled: bool | None = None
    processes: list[GpuProcess] = Field(default_factory=list)
    db_match: str | None = None  # the hardware_db entry this GPU was matched to, None if unknown to the DB
    source: str = "probe"  # "probe" (NVML etc.), "what-if" (--gpu), "file" (--hardware)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def vram_bytes(self) -> int:
        """The card's memory size (the plan --json contract names it vram_bytes)."""
        return self.memory_total_bytes

    @property
    def usable_bytes(self) -> int:
        """Memory the planner may fill: free memory when probed, else the total."""
        return self.memory_free_bytes if self.memory_free_bytes is not None else self.memory_total_bytes

    def cc_tuple(self) -> tuple[int, int] | None:
        if not self.compute_capability:
            return None
        major, _, minor = self.compute_capability.partition(".")
        return int(major), int(minor or 0)


class Cpu(BaseModel):
    model: str = "unknown CPU"
    architecture: str = "x86_64"
    physical_cores: int = 1
    logical_cores: int = 1
    flags: list[str] = Field(default_factory=list)  # normalised lower-case: avx, avx2, fma, f16c, avx512f, ...
    memory_bandwidth_gbs: float | None = None  # host RAM bandwidth, when known (used for CPU-side speed)
    # cores llama.cpp computes on (common.cpp cpu_get_num_math: no efficiency cores, no hyper-threads); None: all
    # physical cores
    performance_cores: int | None = None
    db_match: str | None = None  # the hardware_db/cpus row this CPU was taken from
    source: str = "probe"  # probe | file | what-if: --cpu | what-if: platform | what-if: default


class Memory(BaseModel):
    total_bytes: int
    available_bytes: int
    swap_total_bytes: int = 0
    swap_free_bytes: int = 0


class Disk(BaseModel):
    path: str = ""
    total_bytes: int | None = None
    free_bytes: int | None = None
    read_bandwidth_gbs: float | None = None  # sequential read speed, for the streaming-from-disk estimate


class Container(BaseModel):
    docker_client: bool = False
    docker_version: str | None = None
    engine_reachable: bool = False
    nvidia_runtime: bool = False
    detail: str | None = None


class DriverStatus(BaseModel):
    """What the GPU driver layer said, as a fact: a missing driver or an NVML error is not a crash."""

    nvml_available: bool = False
    error: str | None = None  # e.g. "Driver/library version mismatch"
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    nvml_version: str | None = None
    nvml_error_code: int | None = None  # NVML's return code when nvmlInit failed (18 = version mismatch)


class LlamaCppPythonBuild(BaseModel):
    """The llama-cpp-python installed beside planner (the `embedded` launch), as its files say."""

    version: str | None = None
    # The CPU library holds llama.cpp's AMX matmul kernels: a -march=native build on an AMX CPU (Sapphire Rapids or
    # later). Those kernels crash on some such hosts (llama.cpp #20824), so doctor names it.
    amx_kernels: bool = False
    library: str | None = None  # the libggml-cpu file that was read


class Hardware(BaseModel):
    gpus: list[Gpu] = Field(default_factory=list)
    cpu: Cpu = Field(default_factory=Cpu)
    memory: Memory
    disk: Disk = Field(default_factory=Disk)
    container: Container = Field(default_factory=Container)
    os: str = "linux"  # platform.system() in lower case: linux, darwin, windows
    os_release: str | None = None  # e.g. "Debian GNU/Linux 12 (bookworm), kernel 6.1.0"
    driver: DriverStatus = Field(default_factory=DriverStatus)
    llama_cpp_python: LlamaCppPythonBuild | None = None  # None: not installed, or not probed (what-if)
    source: str = "probe"  # probe | what-if | file
    warnings: list[str] = Field(default_factory=list)
