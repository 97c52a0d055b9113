"""Options shared by several verbs, declared once (names as in llama-server and docker)."""

from __future__ import annotations

import functools
import inspect
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from planner.errors import BadInput
from planner.types.hardware import Hardware
from planner.types.plan import Overrides, PlanRequest, UseCase
from planner.types.units import parse_size

GpuOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--gpu",
        help='What-if GPU, repeatable: "Tesla P4", "2x RTX 3090", "none" for CPU only. Default: probe this machine.',
        rich_help_panel="Hardware",
    ),
]
RamOpt = Annotated[
    str | None,
    typer.Option("--ram", help="What-if host RAM, e.g. 8GB, 16GiB.", rich_help_panel="Hardware"),
]
CpuOpt = Annotated[
    str | None,
    typer.Option(
        "--cpu",
        help='What-if CPU or SoC from planner\'s CPU database, e.g. "Ryzen 9 7950X", "Raspberry Pi 5".',
        rich_help_panel="Hardware",
    ),
]
RamBandwidthOpt = Annotated[
    str | None,
    typer.Option("--ram-bandwidth", help="What-if host RAM bandwidth, e.g. 20GB/s.", rich_help_panel="Hardware"),
]
CpuCoresOpt = Annotated[
    int | None,
    typer.Option("--cpu-cores", min=1, help="What-if physical CPU cores.", rich_help_panel="Hardware"),
]
HardwareOpt = Annotated[
    Path | None,
    typer.Option("--hardware", help="Hardware profile saved by `planner probe --save`.", rich_help_panel="Hardware"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

# --- plan overrides (plan, deploy, doctor MODEL): names as llama-server spells them ---------------------------
_P = "Plan overrides (fixed values are used as given)"
# llama.cpp reads these integer flags with std::stoi: a value past INT32_MAX makes llama-server refuse to start,
# so planner refuses it too rather than print a command that cannot run.
_INT_MAX = 2**31 - 1
QuantOpt = Annotated[str | None, typer.Option("--quant", help="Quant file type, e.g. Q4_K_M.", rich_help_panel=_P)]
CtxOpt = Annotated[
    int | None, typer.Option("--ctx", "--ctx-size", min=256, max=_INT_MAX, help="Context size.", rich_help_panel=_P)
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch", "--batch-size", min=1, max=_INT_MAX, help="Logical batch.", rich_help_panel=_P)
]
UbatchOpt = Annotated[
    int | None,
    typer.Option("--ubatch", "--ubatch-size", min=1, max=_INT_MAX, help="Physical batch.", rich_help_panel=_P),
]
NglOpt = Annotated[
    int | None,
    typer.Option("--ngl", "--n-gpu-layers", min=0, max=_INT_MAX, help="Layers on the GPU.", rich_help_panel=_P),
]
CacheKOpt = Annotated[
    str | None, typer.Option("--cache-type-k", "-ctk", help="K cache type: f16, q8_0, q4_0 ...", rich_help_panel=_P)
]
CacheVOpt = Annotated[
    str | None, typer.Option("--cache-type-v", "-ctv", help="V cache type: f16, q8_0, q4_0 ...", rich_help_panel=_P)
]
FlashAttnOpt = Annotated[str | None, typer.Option("--flash-attn", "-fa", help="on, off or auto.", rich_help_panel=_P)]
ParallelOpt = Annotated[
    int | None,
    typer.Option("--parallel", "-np", min=1, max=_INT_MAX, help="Parallel slots (unified KV).", rich_help_panel=_P),
]
NCpuMoeOpt = Annotated[
    int | None,
    typer.Option(
        "--n-cpu-moe", min=0, max=_INT_MAX, help="Keep the experts of the first N layers in RAM.", rich_help_panel=_P
    ),
]
TensorSplitOpt = Annotated[
    str | None, typer.Option("--tensor-split", "-ts", help="GPU proportions, e.g. 3,1.", rich_help_panel=_P)
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", "-t", min=1, max=_INT_MAX, help="CPU threads.", rich_help_panel=_P)
]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="llama.cpp backend to plan for: cuda, rocm, vulkan, metal, sycl or cpu (default: the one deployed).",
        rich_help_panel=_P,
    ),
]
RuntimeOpt = Annotated[str, typer.Option("--runtime", help="llama-server or llama-cpp-python.", rich_help_panel=_P)]
MarginOpt = Annotated[
    str | None,
    typer.Option("--margin", help="VRAM kept free per GPU (default: 256 MiB or 3 %).", rich_help_panel=_P),
]
_O = "Objective (what the best plan is)"
MinSpeedOpt = Annotated[
    float | None,
    typer.Option("--min-speed", min=0, help="Usable generation tokens/s (default 5).", rich_help_panel=_O),
]
MinCtxOpt = Annotated[
    int | None,
    typer.Option(
        "--min-ctx", min=256, max=_INT_MAX, help="Context floor (default 4096, or the model's maximum).",
        rich_help_panel=_O,
    ),
]  # fmt: skip
PreferOpt = Annotated[
    str | None,
    typer.Option("--prefer", help="quality, speed or context first (default: quality at a usable speed).",
                 rich_help_panel=_O),
]  # fmt: skip
UseCaseOpt = Annotated[
    str,
    typer.Option(
        "--use-case",
        help="With no MODEL: rank the catalog by the public leaderboard category for chat, code or reasoning.",
        rich_help_panel=_P,
    ),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Use only the offline catalog and local files.", rich_help_panel=_P)
]


# --- the option groups, declared once and shared by plan, deploy and doctor ----------------------------------


@dataclass
class HardwareOptions:
    """--gpu / --cpu / --ram / --cpu-cores / --ram-bandwidth / --hardware as given; `hardware()` turns them into the
    Hardware to plan for."""

    gpu: list[str] | None = None
    ram: str | None = None
    cpu_cores: int | None = None
    hardware_file: Path | None = None
    cpu: str | None = None
    ram_bandwidth: str | None = None

    def hardware(self, *, container: bool = False) -> Hardware:
        import planner

        return planner.what_if(
            self.gpu,
            self.ram,
            self.cpu_cores,
            hardware_file=self.hardware_file,
            container=container,
            cpu=self.cpu,
            ram_bandwidth=self.ram_bandwidth,
        )


@dataclass
class PlanOptions:
    """Everything `plan` takes besides MODEL: the hardware, the fixed knobs, the runtime, margin and offline."""

    hardware: HardwareOptions
    overrides: Overrides
    runtime: str = "llama-server"
    margin: str | None = None
    offline: bool = False
    use_case: str = "chat"

    def request(self, model: str | None, *, container: bool = False) -> PlanRequest:
        if self.runtime not in ("llama-server", "llama-cpp-python"):
            raise BadInput(f"--runtime {self.runtime!r}: expected llama-server or llama-cpp-python")
        margin = parse_size(self.margin, allow_zero=True) if self.margin else None
        if self.use_case not in ("chat", "code", "reasoning"):
            raise BadInput(f"--use-case {self.use_case!r}: expected chat, code or reasoning")
        return PlanRequest(
            model=model,
            hardware=self.hardware.hardware(container=container),
            runtime="llama-cpp-python" if self.runtime == "llama-cpp-python" else "llama-server",
            overrides=self.overrides,
            margin_bytes=margin,
            offline=self.offline,
            use_case=typing.cast(UseCase, self.use_case),
        )


_HARDWARE_PARAMS: list[tuple[str, Any]] = [
    ("gpu", GpuOpt),
    ("ram", RamOpt),
    ("cpu_cores", CpuCoresOpt),
    ("hardware_file", HardwareOpt),
    ("cpu", CpuOpt),
    ("ram_bandwidth", RamBandwidthOpt),
]
_OVERRIDE_PARAMS: list[tuple[str, Any]] = [
    ("quant", QuantOpt),
    ("ctx", CtxOpt),
    ("batch", BatchOpt),
    ("ubatch", UbatchOpt),
    ("ngl", NglOpt),
    ("cache_type_k", CacheKOpt),
    ("cache_type_v", CacheVOpt),
    ("flash_attn", FlashAttnOpt),
    ("parallel", ParallelOpt),
    ("n_cpu_moe", NCpuMoeOpt),
    ("tensor_split", TensorSplitOpt),
    ("threads", ThreadsOpt),
    ("backend", BackendOpt),
    ("min_speed", MinSpeedOpt),
    ("min_ctx", MinCtxOpt),
    ("prefer", PreferOpt),
]
_PLAN_PARAMS: list[tuple[str, Any, Any]] = [
    ("runtime", RuntimeOpt, "llama-server"),
    ("margin", MarginOpt, None),
    ("offline", OfflineOpt, False),
    ("use_case", UseCaseOpt, "chat"),
]

F = TypeVar("F", bound=Callable[..., None])


def _with_params(
    func: Callable[..., None], added: list[tuple[str, Any, Any]], collect: Callable[[dict[str, Any]], dict[str, Any]]
) -> Callable[..., None]:
    """`func` with the `added` options in its signature (what typer reads); `collect` folds their values into
    the keyword arguments `func` really takes."""
    hints = typing.get_type_hints(func, include_extras=True)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(func).parameters.values()
        if p.name not in ("hardware", "options")
    ]
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, annotation, default in added
    ]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> None:
        func(**collect(kwargs))

    wrapper.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *extra]}
    del wrapper.__wrapped__  # typer must read the new signature, not follow the wrapped function's
    return wrapper


def _hardware_from(kwargs: dict[str, Any]) -> HardwareOptions:
    return HardwareOptions(**{name: kwargs.pop(name) for name, _ in _HARDWARE_PARAMS})


def with_hardware_options(func: F) -> F:
    """Adds --gpu/--ram/--cpu-cores/--hardware to a command; it receives them as `hardware: HardwareOptions`."""

    def collect(kwargs: dict[str, Any]) -> dict[str, Any]:
        hardware = _hardware_from(kwargs)  # pops its options out of kwargs
        return {**kwargs, "hardware": hardware}

    return typing.cast(F, _with_params(func, [(n, a, None) for n, a in _HARDWARE_PARAMS], collect))


def with_plan_options(func: F) -> F:
    """Adds the hardware options, every plan override, --runtime, --margin and --offline to a command; it
    receives them as `options: PlanOptions` (validated: a bad value is one BadInput line)."""
    added = [(n, a, None) for n, a in _HARDWARE_PARAMS + _OVERRIDE_PARAMS] + _PLAN_PARAMS

    def collect(kwargs: dict[str, Any]) -> dict[str, Any]:
        hardware = _hardware_from(kwargs)
        overrides = overrides_from_options(**{name: kwargs.pop(name) for name, _ in _OVERRIDE_PARAMS})
        plan_values = {name: kwargs.pop(name) for name, _, _ in _PLAN_PARAMS}
        return {**kwargs, "options": PlanOptions(hardware=hardware, overrides=overrides, **plan_values)}

    return typing.cast(F, _with_params(func, added, collect))


BACKENDS = ("cuda", "rocm", "vulkan", "metal", "sycl", "cpu")
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")


def overrides_from_options(
    *,
    quant: str | None = None,
    ctx: int | None = None,
    batch: int | None = None,
    ubatch: int | None = None,
    ngl: int | None = None,
    cache_type_k: str | None = None,
    cache_type_v: str | None = None,
    flash_attn: str | None = None,
    parallel: int | None = None,
    n_cpu_moe: int | None = None,
    tensor_split: str | None = None,
    threads: int | None = None,
    backend: str | None = None,
    min_speed: float | None = None,
    min_ctx: int | None = None,
    prefer: str | None = None,
) -> Overrides:
    """Validate the override options (one clear line for a bad value) into Overrides."""
    if backend is not None and backend.lower() not in BACKENDS:
        raise BadInput(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    for name, value in (("--cache-type-k", cache_type_k), ("--cache-type-v", cache_type_v)):
        if value is not None and value.lower() not in KV_TYPES:
            raise BadInput(f"{name} {value!r} is not a KV cache type (one of: {', '.join(KV_TYPES)})")
    if flash_attn is not None and flash_attn not in ("on", "off", "auto"):
        raise BadInput(f"--flash-attn {flash_attn!r}: expected on, off or auto")
    split = None
    if tensor_split:
        try:
            split = [float(x) for x in tensor_split.replace("/", ",").split(",") if x.strip()]
        except ValueError:
            raise BadInput(f"--tensor-split {tensor_split!r}: expected numbers such as 3,1") from None
        if not split or not all(math.isfinite(x) and x >= 0 for x in split) or sum(split) <= 0:
            raise BadInput(f"--tensor-split {tensor_split!r}: expected non-negative numbers with a positive sum")
    if prefer is not None and prefer not in ("balanced", "quality", "speed", "context"):
        raise BadInput(f"--prefer {prefer!r}: expected quality, speed or context")
    if min_speed is not None and not math.isfinite(min_speed):
        raise BadInput(f"--min-speed {min_speed}: expected a number of tokens/s")
    if batch and ubatch and ubatch > batch:
        raise BadInput(f"--ubatch {ubatch} is larger than --batch {batch}")
    return Overrides(
        quant=quant,
        ctx_size=ctx,
        batch_size=batch,
        ubatch_size=ubatch,
        n_gpu_layers=ngl,
        cache_type_k=cache_type_k.lower() if cache_type_k else None,
        cache_type_v=cache_type_v.lower() if cache_type_v else None,
        flash_attn="on" if flash_attn == "on" else "off" if flash_attn == "off" else None,
        parallel=parallel,
        n_cpu_moe=n_cpu_moe,
        tensor_split=split,
        threads=threads,
        backend=typing.cast(Any, backend.lower()) if backend else None,
        min_speed=min_speed,
        min_ctx=min_ctx,
        prefer="quality"
        if prefer == "quality"
        else "speed"
        if prefer == "speed"
        else "context"
        if prefer == "context"
        else "balanced"
        if prefer == "balanced"
        else None,
    )
