"""Engine and runtime facts: which llama.cpp image runs on this hardware, which driver it needs, what else works.

Pure functions over the data in hardware_db/images.yaml, cuda.yaml and engines.yaml (every row names its
source). Used by `plan`/`deploy` to pick the server image and by `doctor` to explain what fails and why.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pydantic import BaseModel, Field

from planner.data.paths import hardware_db
from planner.types.engine import Backend, ImageChoice
from planner.types.hardware import Gpu, Hardware

Version = tuple[int, ...]


# ----------------------------------------------------------------------------------------------- data models


class ImageRow(BaseModel):
    tag: str
    backend: str
    aliases: list[str] = Field(default_factory=list)
    cuda_version: str | None = None
    rocm_version: str | None = None
    oneapi_version: str | None = None
    musa_version: str | None = None
    base: str | None = None
    architectures: list[str] = Field(default_factory=list)  # CMake CUDA_ARCHITECTURES entries
    gfx_targets: list[str] = Field(default_factory=list)
    source: str


class ImageCatalog(BaseModel):
    registry: str
    build: str
    build_date: str
    build_source: str
    port: int
    healthcheck: list[str]
    healthcheck_source: str
    env: dict[str, str] = Field(default_factory=dict)
    entrypoint: str
    jit_cache_dir: str
    images: list[ImageRow]

    def by_tag(self, tag: str) -> ImageRow:
        for row in self.images:
            if row.tag == tag or tag in row.aliases:
                return row
        raise KeyError(f"images.yaml has no image tagged {tag!r}")

    def pinned(self, row: ImageRow) -> str:
        return f"{self.registry}:{row.tag}-{self.build}"


class ToolkitRow(BaseModel):
    cuda: str
    min_driver: str
    source: str
    note: str | None = None


class MinorVersionFloor(BaseModel):
    major: int
    min_driver: str
    source: str


class ArchitectureRange(BaseModel):
    cuda_major: int
    min_cc: str
    max_cc: str
    source: str
    note: str | None = None


class DriverSupportEnd(BaseModel):
    architectures: list[str]
    min_cc: str
    max_cc: str
    last_branch: int
    newest_cuda: str
    source: str


class CudaFacts(BaseModel):
    sources: dict[str, str]
    toolkits: list[ToolkitRow]
    minor_version_floor: list[MinorVersionFloor]
    architectures: list[ArchitectureRange]
    driver_support_ends: list[DriverSupportEnd]

    def source(self, key: str) -> str:
        return self.sources.get(key, key)


class EngineRow(BaseModel):
    id: str
    name: str
    vendors: list[str]
    min_cc: str
    min_driver: str | None = None
    note: str | None = None
    source: str


class LlamaCppCuda(BaseModel):
    mmq_min_cc: str
    mmq_source: str
    bf16_min_cc: str
    bf16_source: str
    flash_attention_min_cc: str
    flash_attention_source: str
    cuda_graphs_min_cc: str
    cuda_graphs_source: str


class PassiveCooling(BaseModel):
    source: str
    names: list[str]


class EngineFacts(BaseModel):
    engines: list[EngineRow]
    llamacpp_cuda: LlamaCppCuda
    slow_fp16_cc: list[str]
    slow_fp16_source: str
    passive_cooling: PassiveCooling

    def engine(self, engine_id: str) -> EngineRow:
        for row in self.engines:
            if row.id == engine_id:
                return row
        raise KeyError(f"engines.yaml has no engine {engine_id!r}")


# ------------------------------------------------------------------------------------------- result models


class EngineSupport(BaseModel):
    engine: str
    name: str
    supported: bool
    min_cc: str
    reason: str
    source: str


# ------------------------------------------------------------------------------------------------ loaders


def _load_yaml(name: str) -> Any:
    from planner.data.loader import load_mapping

    return load_mapping(hardware_db() / name)


@cache
def load_images() -> ImageCatalog:
    return ImageCatalog.model_validate(_load_yaml("images.yaml"))


@cache
def load_cuda() -> CudaFacts:
    return CudaFacts.model_validate(_load_yaml("cuda.yaml"))


@cache
def load_engines() -> EngineFacts:
    return EngineFacts.model_validate(_load_yaml("engines.yaml"))


# ------------------------------------------------------------------------------------------------ versions


def parse_version(text: str | None) -> Version | None:
    """'535.129.03' -> (535, 129, 3); '12.8.1' -> (12, 8, 1); None or junk -> None."""
    if not text:
        return None
    match = re.match(r"\s*(\d+(?:\.\d+)*)", str(text))
    if not match:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def cc_version(cc: str | tuple[int, ...] | None) -> Version | None:
    if cc is None:
        return None
    if isinstance(cc, tuple):
        return cc
    return parse_version(cc)


def _major_minor(version: Version) -> Version:
    return (version + (0,))[:2]


def _toolkit_row(cuda_version: str) -> ToolkitRow | None:
    wanted = parse_version(cuda_version)
    if wanted is None:
        return None
    for row in load_cuda().toolkits:
        if _major_minor(parse_version(row.cuda) or ()) == _major_minor(wanted):
            return row
    return None


def min_driver_for(cuda_version: str) -> str | None:
    """The minimum Linux driver for a CUDA toolkit version ('12.8.1' -> '570.124.06'), None when unknown."""
    row = _toolkit_row(cuda_version)
    return row.min_driver if row else None


def driver_cuda_version(driver_version: str | None) -> str | None:
    """The newest CUDA a driver supports, from the toolkit table ('535.129.03' -> '12.2')."""
    driver = parse_version(driver_version)
    if driver is None:
        return None
    best: tuple[Version, str] | None = None
    for row in load_cuda().toolkits:
        needed = parse_version(row.min_driver)
        cuda = parse_version(row.cuda)
        if needed and cuda and driver >= needed and (best is None or cuda > best[0]):
            best = (cuda, row.cuda)
    return best[1] if best else None


def driver_supports(cuda_version: str, driver_version: str | None, driver_cuda: str | None = None) -> bool:
    """Can a driver run a program (or container) built with CUDA `cuda_version`, JIT-compiled PTX included?

    `driver_cuda` is the CUDA version the driver itself reports (NVML / nvidia-smi header); when given it decides,
    since it is exact. Otherwise the driver version is compared with the toolkit table; a driver branch newer than
    every row of the table is assumed to support it.
    """
    wanted = parse_version(cuda_version)
    if wanted is None:
        raise ValueError(f"not a CUDA version: {cuda_version!r}")
    reported = parse_version(driver_cuda)
    if reported is not None:
        return _major_minor(reported) >= _major_minor(wanted)
    driver = parse_version(driver_version)
    if driver is None:
        return False
    row = _toolkit_row(cuda_version)
    if row is not None:
        return driver >= (parse_version(row.min_driver) or ())
    newest_known = max(parse_version(r.min_driver) or () for r in load_cuda().toolkits)
    if driver[0] > newest_known[0]:
        return True
    known = parse_version(driver_cuda_version(driver_version))
    return known is not None and _major_minor(known) >= _major_minor(wanted)


def _host_driver_applies(gpu: Gpu | None) -> bool:
    # A what-if GPU (--gpu) is not driven by this host's driver: its driver is unknown.
    return gpu is None or gpu.source != "what-if"


def reported_driver_cuda(hardware: Hardware, gpu: Gpu | None = None) -> str | None:
    """The CUDA version the installed driver reports (probe), else derived from the driver version."""
    reported = gpu.cuda_driver_version if gpu else None
    if not reported and _host_driver_applies(gpu):
        reported = hardware.driver.cuda_driver_version
    if reported:
        return reported
    return driver_cuda_version(driver_version_of(hardware, gpu))


def driver_version_of(hardware: Hardware, gpu: Gpu | None = None) -> str | None:
    """The driver version for this GPU; None for a what-if GPU whose driver is not known."""
    version = gpu.driver_version if gpu else None
    if not version and _host_driver_applies(gpu):
        version = hardware.driver.driver_version
    return version


# ---------------------------------------------------------------------------------- CUDA architectures


def _arch_entry(entry: str) -> tuple[Version, bool, bool]:
    """'86-real' -> ((8, 6), real=True, specific=False); '120a-real' -> ((12, 0), True, True)."""
    code, _, kind = entry.partition("-")
    specific = code.endswith("a") or code.endswith("f")
    digits = code.rstrip("af")
    number = int(digits)
    return (number // 10, number % 10), kind != "virtual", specific


def native_code_for(cc: Version, architectures: list[str]) -> str | None:
    """The SASS entry that runs on `cc` as is (same major, lower or equal minor; 'a' targets only exactly)."""
    for entry in architectures:
        arch, real, specific = _arch_entry(entry)
        if not real:
            continue
        if (specific and arch == cc[:2]) or (not specific and arch[0] == cc[0] and arch[1] <= cc[1]):
            return entry
    return None


def ptx_for(cc: Version, architectures: list[str]) -> str | None:
    """The newest PTX entry the driver can JIT-compile for `cc` (any virtual arch <= cc)."""
    usable = [(arch, entry) for entry in architectures for arch, real, _ in [_arch_entry(entry)] if not real]
    usable = [(arch, entry) for arch, entry in usable if arch <= cc[:2]]
    return max(usable)[1] if usable else None


def _cc_text(cc: Version) -> str:
    return f"{cc[0]}.{cc[1] if len(cc) > 1 else 0}"


def _sm(cc: Version) -> str:
    return f"sm_{cc[0]}{cc[1] if len(cc) > 1 else 0}"


# ------------------------------------------------------------------------------------------- image choice


def server_image_for(hardware: Hardware) -> ImageChoice:
    """Pick the official llama.cpp server image for this hardware, pinned to the build in images.yaml."""
    nvidia = [gpu for gpu in hardware.gpus if gpu.vendor == "nvidia"]
    if nvidia:
        return _nvidia_image(hardware, nvidia)
    amd = [gpu for gpu in hardware.gpus if gpu.vendor == "amd"]
    if amd:
        return _amd_image(amd)
    intel = [gpu for gpu in hardware.gpus if gpu.vendor == "intel"]
    if intel:
        return _choice(
            "server-intel",
            "intel",
            [f"Intel GPU ({intel[0].name}): the SYCL (oneAPI) image; server-vulkan is the fallback if SYCL fails"],
        )
    reasons = ["no supported GPU: the CPU image"]
    if any(gpu.vendor == "apple" for gpu in hardware.gpus):
        reasons = [
            "Apple GPU: containers on macOS cannot reach Metal, so the image would run on the CPU; "
            "run llama-server natively for the GPU"
        ]
    choice = _choice("server", "cpu", reasons)
    choice.runs_on_gpu = False
    return choice


def gpus_the_image_cannot_run(hardware: Hardware) -> list[tuple[Gpu, str]]:
    """NVIDIA GPUs with neither native code nor PTX in the CUDA image server_image_for picks (Kepler on the CUDA
    12 image), each with the reason doctor gives (gpu-not-in-image); the plan leaves them out."""
    choice = server_image_for(hardware)
    if choice.backend != "cuda":
        return []
    row = load_images().by_tag(choice.tag)
    oldest = min(row.architectures, key=lambda entry: _arch_entry(entry)[0]) if row.architectures else "?"
    out = []
    for gpu in hardware.gpus:
        cc = cc_version(gpu.compute_capability) if gpu.vendor == "nvidia" else None
        if cc is None or native_code_for(cc, row.architectures) or ptx_for(cc, row.architectures):
            continue
        out.append((gpu, f"{gpu.name} ({_sm(cc)}) has no code in the {row.tag} image at all (oldest is {oldest})"))
    return out


def _choice(tag: str, backend: Backend, reasons: list[str]) -> ImageChoice:
    catalog = load_images()
    row = catalog.by_tag(tag)
    return ImageChoice(
        image=catalog.pinned(row),
        backend=backend,
        cuda_version=row.cuda_version,
        min_driver=min_driver_for(row.cuda_version) if row.cuda_version else None,
        reasons=reasons,
        tag=row.tag,
        build=catalog.build,
        port=catalog.port,
        healthcheck=catalog.healthcheck,
        env=dict(catalog.env),
        sources=[row.source, catalog.build_source],
    )


def _nvidia_image(hardware: Hardware, gpus: list[Gpu]) -> ImageChoice:
    catalog = load_images()
    cuda12, cuda13 = catalog.by_tag("server-cuda"), catalog.by_tag("server-cuda13")
    known = [(cc, gpu) for gpu in gpus if (cc := cc_version(gpu.compute_capability)) is not None]
    lowest = min(known, key=lambda pair: pair[0]) if known else None
    driver_cuda = reported_driver_cuda(hardware, gpus[0])
    cuda13_version = cuda13.cuda_version or "13"
    reasons: list[str] = []

    if lowest is None:
        tag = "server-cuda"
        reasons.append("compute capability unknown: the CUDA 12 image, which covers the widest range of GPUs")
    elif lowest[0] < (7, 5):
        tag = "server-cuda"
        reasons.append(
            f"{lowest[1].name} is compute capability {_cc_text(lowest[0])}: CUDA 13 cannot build for GPUs below "
            "7.5, so the CUDA 13 image has no code for it; the CUDA 12 image does"
        )
    elif driver_cuda and driver_supports(cuda13_version, None, driver_cuda):
        tag = "server-cuda13"
        reasons.append(f"the driver supports CUDA {driver_cuda} (>= {_mm(cuda13_version)}): the CUDA 13 image")
    else:
        tag = "server-cuda"
        why = f"reports CUDA {driver_cuda}" if driver_cuda else "is not known (what-if hardware)"
        reasons.append(
            f"the driver {why}; the CUDA 13 image needs {_mm(cuda13_version)}: the CUDA 12 image "
            f"({_mm(cuda12.cuda_version or '12')}), which runs on more drivers"
        )

    choice = _choice(tag, "cuda", reasons)
    row = catalog.by_tag(tag)
    choice.jit_cache_dir = catalog.jit_cache_dir
    _explain_code_paths(choice, row, known, catalog.jit_cache_dir)
    driver = driver_version_of(hardware, gpus[0])
    if row.cuda_version and (driver or driver_cuda):
        if driver_supports(row.cuda_version, driver, driver_cuda):
            choice.reasons.append(
                f"driver {driver or '?'} (CUDA {driver_cuda or '?'}) runs CUDA {row.cuda_version} images"
            )
        else:
            choice.reasons.append(
                f"driver {driver or '?'} (CUDA {driver_cuda or '?'}) is too old for this image: it needs CUDA "
                f">= {_mm(row.cuda_version)}, a driver >= {choice.min_driver}"
            )
    return choice


def _explain_code_paths(choice: ImageChoice, row: ImageRow, known: list[tuple[Version, Gpu]], cache_dir: str) -> None:
    """Say per GPU whether the image has native code, PTX the driver must JIT-compile, or nothing at all."""
    jitted: list[str] = []
    for cc, gpu in known:
        native = native_code_for(cc, row.architectures)
        if native:
            choice.reasons.append(f"{gpu.name} ({_sm(cc)}) runs the image's native {native} code")
            continue
        ptx = ptx_for(cc, row.architectures)
        if ptx is None:
            choice.runs_on_gpu = False
            oldest = min(row.architectures, key=lambda entry: _arch_entry(entry)[0])
            choice.reasons.append(
                f"{gpu.name} ({_sm(cc)}) has no code in this image at all (oldest is {oldest}): it cannot use the "
                "GPU; build llama.cpp from source with an older CUDA toolkit, or use the Vulkan image"
            )
            continue
        jitted.append(f"{gpu.name} ({_sm(cc)} from {ptx} PTX)")
    if jitted:
        choice.jit_warning = (
            f"no native code for {', '.join(jitted)} in {row.tag}: the driver JIT-compiles the PTX on first use. "
            f"That needs a driver for CUDA >= {_mm(row.cuda_version or '')} and makes the first start slow "
            f"(minutes); the result is cached in {cache_dir}, so mount a volume there to keep it across "
            "container restarts"
        )


def _mm(version: str) -> str:
    parsed = parse_version(version)
    return _cc_text(_major_minor(parsed)) if parsed else version


def _amd_image(gpus: list[Gpu]) -> ImageChoice:
    row = load_images().by_tag("server-rocm")
    targets = [gpu.gfx_target for gpu in gpus]
    if all(target in row.gfx_targets for target in targets):
        return _choice(
            "server-rocm",
            "rocm",
            [f"AMD {', '.join(t or '?' for t in targets)}: built into the ROCm {row.rocm_version} image"],
        )
    missing = sorted({t or "unknown gfx target" for t in targets if t not in row.gfx_targets})
    return _choice(
        "server-vulkan",
        "vulkan",
        [
            f"AMD {', '.join(missing)} is not among the ROCm image's targets ({', '.join(row.gfx_targets)}): "
            "the Vulkan image runs on any GPU with a Vulkan driver"
        ],
    )


# ------------------------------------------------------------------------------------------ engine support


def engine_support(cc: str | tuple[int, ...] | None, vendor: str = "nvidia") -> list[EngineSupport]:
    """What each engine (and vLLM quantization kernel) says about a GPU of this compute capability."""
    version = cc_version(cc)
    result = []
    for row in load_engines().engines:
        if vendor not in row.vendors:
            supported, reason = False, f"{row.name} does not support {vendor} GPUs"
        elif vendor != "nvidia":
            supported, reason = True, f"{row.name} supports {vendor} GPUs (see its hardware list)"
        elif version is None:
            supported, reason = False, f"compute capability unknown; {row.name} needs >= {row.min_cc}"
        else:
            needed = parse_version(row.min_cc) or (0,)
            supported = version[:2] >= needed[:2]
            verdict = "meets" if supported else "is below"
            reason = f"compute capability {_cc_text(version)} {verdict} {row.name}'s minimum {row.min_cc}"
        if row.note:
            reason = f"{reason}. {row.note}"
        result.append(
            EngineSupport(
                engine=row.id,
                name=row.name,
                supported=supported,
                min_cc=row.min_cc,
                reason=reason,
                source=row.source,
            )
        )
    return result


def is_passively_cooled(gpu: Gpu) -> bool:
    """Datacenter cards with a passive heatsink: the GPU database's row when the GPU matched one, else the
    engines.yaml name list (for GPUs the database does not know)."""
    flag = _db_passive_cooling(gpu)
    if flag is not None:
        return flag
    name = gpu.name.lower()
    for candidate in load_engines().passive_cooling.names:
        if re.search(rf"(?<!\w){re.escape(candidate.lower())}(?!\w)", name):
            return True
    return False


def _db_passive_cooling(gpu: Gpu) -> bool | None:
    if not gpu.db_match:
        return None
    try:
        from planner.data.gpus import match_gpu

        spec = match_gpu(gpu.db_match, gpu.memory_total_bytes or None)
    except Exception:  # a broken or missing database must not take the doctor down: use the name list
        return None
    return spec.passive_cooling if spec is not None else None
