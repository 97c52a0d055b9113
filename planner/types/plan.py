"""The Plan: the one result `planner plan` builds, `--json` dumps and `deploy` renders.

Field names follow the issue #4 JSON contract: add fields freely, never rename.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from planner.types.hardware import Hardware
from planner.types.model import PlannedModel

Runtime = Literal["llama-server", "llama-cpp-python"]
UseCase = Literal["chat", "code", "reasoning"]
UpgradeKind = Literal["ram", "second_gpu", "gpu", "quant", "model", "parallel", "context"]


class Settings(BaseModel):
    """Every knob that changes memory or speed. The command line is rendered from this, explicitly."""

    n_gpu_layers: int = 0  # llama.cpp semantics: N units from the end; n_layer + 1 = everything incl. output
    ctx_size: int = 4096
    batch_size: int = 2048
    ubatch_size: int = 512
    flash_attn: Literal["on", "off"] = "off"
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    threads: int = 1
    parallel: int = 1
    kv_unified: bool = True
    tensor_split: list[float] | None = None  # layer proportions per GPU, None with one GPU
    n_cpu_moe: int = 0
    mmap: bool = True
    swa_full: bool = False
    split_mode: Literal["layer", "none"] = "layer"
    gpu_off: bool = False  # GPUs present but too full to help: `--device none` keeps llama.cpp off them


class DeviceMemory(BaseModel):
    name: str
    index: int = 0
    layers: int = 0  # repeating layers on this device
    output_layer: bool = False
    weights_bytes: int = 0
    kv_cache_bytes: int = 0
    compute_bytes: int = 0
    overhead_bytes: int = 0  # CUDA context, cuBLAS, pool: not in any llama.cpp buffer
    mmproj_bytes: int = 0
    total_bytes: int = 0
    capacity_bytes: int = 0  # what the planner may use: free memory minus what other processes hold


class HostMemory(BaseModel):
    weights_bytes: int = 0  # CPU-resident weights (file-backed page cache under mmap)
    weights_mapped: bool = True
    kv_cache_bytes: int = 0
    compute_bytes: int = 0
    output_bytes: int = 0
    runtime_bytes: int = 0  # llama-cpp-python scores array, server prompt cache, process baseline
    total_bytes: int = 0
    capacity_bytes: int = 0


class MemoryUse(BaseModel):
    devices: list[DeviceMemory] = Field(default_factory=list)
    host: HostMemory = Field(default_factory=HostMemory)
    margin_bytes: int = 0  # safety margin kept free on each GPU


class Speed(BaseModel):
    """None on a plan that does not fit: it does not run, so it has no tokens/s (see disk_bound_seconds_per_token)."""

    prompt_tokens_per_s: float | None
    generation_tokens_per_s: float | None
    low: float | None  # generation band
    high: float | None
    prompt_low: float | None = None
    prompt_high: float | None = None
    basis: str  # how it was derived, with the calibration source
    disk_bound_seconds_per_token: float | None = None
    # the arithmetic behind the figures, to redo from the basis: bytes read per generated token on each device
    # (memory.devices order) and from host RAM (weights + KV), and the PCIe copy of host weights per prompt ubatch
    # (None when no GPU computes on host weights)
    gpu_bytes_per_token: list[int] = Field(default_factory=list)
    host_bytes_per_token: int = 0
    pcie_seconds_per_ubatch: float | None = None


class Quality(BaseModel):
    metric: str  # "perplexity" | "ppl_increase" | "kld"
    value: float
    source: str
    note: str | None = None


class Alternative(BaseModel):
    model: str
    quant: str
    file: str | None = None
    size_bytes: int
    fits: bool
    where: str  # "GPU" | "GPU+CPU" | "CPU" | "disk"
    n_gpu_layers: int
    ctx_size: int
    generation_tokens_per_s: float | None = None
    quality: Quality | None = None
    why: str = ""  # why the plan did not choose it: the step of the comparison where it lost
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    n_cpu_moe: int = 0
    on_frontier: bool = False  # no other fitting option is at least as good in quality and context and faster


class Upgrade(BaseModel):
    """One change that could make a plan usable (`plan --upgrade`), with the plan planner makes after it: every
    figure here is that re-plan's, never an estimate of the change."""

    change: str  # in words: "RAM 32 GB -> 48 GB", "a second RTX 3090", "Q4_K_M -> IQ3_XXS"
    kind: UpgradeKind
    options: list[str] = Field(default_factory=list)  # the plan options that make the change, e.g. ["--ram", "48GB"]
    fits: bool  # the re-plan fits
    fixes: bool  # ... and reaches the usable speed and the context floor
    where: str = "does not fit"
    model: str = ""
    quant: str = ""
    n_gpu_layers: int = 0
    ctx_size: int = 0
    generation_tokens_per_s: float | None = None
    prompt_tokens_per_s: float | None = None
    price: float | None = None  # only from the user's --prices file, in its units; never invented
    why: str = ""  # what the re-plan shows against the floors


class Plan(BaseModel):
    model: PlannedModel
    hardware: Hardware
    runtime: Runtime = "llama-server"
    fits: bool = True
    where: str = "GPU"
    settings: Settings
    memory: MemoryUse
    speed: Speed
    quality: Quality | None = None
    command: list[str] = Field(default_factory=list)
    alternatives: list[Alternative] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    llama_cpp_build: str = ""  # the llama.cpp behaviour the estimate models, e.g. "b10454"
    upgrades: list[Upgrade] = Field(default_factory=list)  # `--upgrade`: the changes that fix it, fixing ones first
    upgrade_notes: list[str] = Field(default_factory=list)  # how the advice was found: bounds, what was not tried


class Overrides(BaseModel):
    """Plan parameters the user fixed on the command line; None means the solver chooses."""

    quant: str | None = None
    ctx_size: int | None = None
    batch_size: int | None = None
    ubatch_size: int | None = None
    n_gpu_layers: int | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    flash_attn: Literal["on", "off", "auto"] | None = None
    parallel: int | None = None
    n_cpu_moe: int | None = None
    tensor_split: list[float] | None = None
    threads: int | None = None
    mmap: bool | None = None
    # the llama.cpp backend the speed is predicted for; None: the one planner deploys (CUDA, ROCm or Vulkan by the
    # image choice, SYCL on Intel, Metal on Apple, CPU without a GPU)
    backend: Literal["cuda", "rocm", "vulkan", "metal", "sycl", "cpu"] | None = None
    # the objective's knobs (planner/core/objective.py): what "best" means, not llama-server flags
    min_speed: float | None = None  # usable generation tokens/s (default 5)
    min_ctx: int | None = None  # the context floor (default 4096, or the model's maximum if smaller)
    prefer: Literal["balanced", "quality", "speed", "context"] | None = None


class PlanRequest(BaseModel):
    """Everything `plan` (and `deploy`, `doctor MODEL`) needs: what to run, on what, with which fixed knobs."""

    model: str | None = None  # repo, repo:quant, hf.co/..., local path, catalog alias; None = recommend
    hardware: Hardware
    runtime: Runtime = "llama-server"
    overrides: Overrides = Field(default_factory=Overrides)
    margin_bytes: int | None = None  # per-GPU safety margin; None = the solver's default
    offline: bool = False  # never touch the network; use the catalog
    use_case: UseCase = "chat"  # which leaderboard category ranks a recommendation
    keep_off_gpus: bool = False  # the machine has GPUs the image cannot run: a CPU plan keeps llama.cpp off them
