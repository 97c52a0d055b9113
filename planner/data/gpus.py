"""The GPU hardware database: hardware_db/gpus/*.yaml, validated into GpuSpec rows, and name matching.

Every row names its source. Matching is what lets a probed "NVIDIA A100-SXM4-40GB" or a typed "a100 40gb" find
its row: names are normalised (case, vendor words, punctuation, "80 GB" -> "80gb"), then looked up exactly, then
by the model family with memory and form-factor words removed, where the probed (or typed) memory size picks the
variant.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ByteSize, ConfigDict, Field, RootModel, ValidationError, model_validator

from planner.errors import DataFileError
from planner.types.hardware import Gpu, Vendor

GIB = 1 << 30
# libyaml's loader is ten times faster than the pure-Python one (0.04 s vs 0.5 s for this database); both are safe.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A card's reported total sits a few percent under its nominal size (ECC, driver reservations: a Tesla P4 shows
# 7611 of 8192 MiB, a T4 15109 of 16384 MiB), so a probed size within this fraction picks a variant.
_MEMORY_TOLERANCE = 0.12


# A hardware_db/gpus file is missing, unreadable or has an invalid entry: the one data-file error, by its old name.
GpuDatabaseError = DataFileError


class GpuSpec(BaseModel):
    """One accelerator as the database describes it. Field meanings are in hardware_db/gpus/nvidia-datacenter.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    vendor: Vendor
    family: str  # datacenter, geforce, workstation, desktop-ai, instinct, radeon, arc, apple
    architecture: str
    chip: str | None = None
    compute_capability: str | None = Field(default=None, pattern=r"^\d+\.\d$")
    gfx_target: str | None = Field(default=None, pattern=r"^gfx[0-9a-f]+$")
    vram_bytes: ByteSize  # nominal size of one device; YAML writes it as text ("8 GiB")
    usable_vram_bytes: ByteSize | None = None  # the total nvidia-smi shows on a real card (ECC, reservations)
    usable_vram_source: str | None = None  # the public nvidia-smi output usable_vram_bytes comes from
    memory_options_bytes: list[ByteSize] = Field(default_factory=list)  # Apple: every unified-memory size sold
    memory_type: str | None = None
    memory_bandwidth_gbs: float = Field(gt=0)
    fp16: bool
    fp16_crippled: bool = False  # FP16 at 1/64 rate (GP102/GP104/GP106/GP107): llama.cpp computes in FP32
    bf16: bool | None = None
    tensor_cores: bool = False
    int8: bool | None = None  # dp4a or int8 matrix units: llama.cpp's quantized matmul (MMQ) path
    fp8: bool = False
    fp16_tflops: float | None = Field(default=None, gt=0)  # dense FP16 matrix peak (tensor cores where present)
    fp32_tflops: float | None = Field(default=None, gt=0)  # shader FP32 peak at boost clock
    tdp_watts: int | None = Field(default=None, gt=0)
    year: int = Field(ge=2010, le=2030)
    passive_cooling: bool = False  # no fan: needs server chassis airflow (P4, P40, T4, L4 ...)
    unified_memory: bool = False
    devices_per_board: int = Field(default=1, ge=1)  # K80, M60, A16, MI250X: one board, several devices
    notes: str | None = None
    source: str = Field(min_length=10)

    @model_validator(mode="before")
    @classmethod
    def _derive_nvidia_flags(cls, data: object) -> object:
        """bf16 and int8 follow from the compute capability on NVIDIA; derive them when a row leaves them out."""
        if isinstance(data, dict) and data.get("vendor") == "nvidia" and data.get("compute_capability"):
            cc = _cc_tuple(str(data["compute_capability"]))
            data = {**data}
            data.setdefault("bf16", cc >= (8, 0))
            data.setdefault("int8", cc >= (6, 1))  # dp4a arrived with sm_61; llama.cpp's MMQ needs it
        return data

    @model_validator(mode="after")
    def _consistent(self) -> GpuSpec:
        if self.vendor == "nvidia":
            if not self.compute_capability:
                raise ValueError("NVIDIA entries need compute_capability")
            if self.bf16 != (_cc_tuple(self.compute_capability) >= (8, 0)):
                raise ValueError("bf16 must be true exactly when compute_capability >= 8.0")
        elif self.compute_capability:
            raise ValueError("compute_capability is for NVIDIA entries; AMD uses gfx_target")
        if self.vendor == "amd" and not self.gfx_target:
            raise ValueError("AMD entries need gfx_target")
        if self.fp16_crippled and not self.fp16:
            raise ValueError("fp16_crippled needs fp16: true")
        if self.usable_vram_bytes is not None:
            if not self.usable_vram_source:
                raise ValueError("usable_vram_bytes needs usable_vram_source")
            if self.usable_vram_bytes > self.vram_bytes:
                raise ValueError("usable_vram_bytes is larger than vram_bytes")
        if self.memory_options_bytes and max(self.memory_options_bytes) != self.vram_bytes:
            raise ValueError("vram_bytes must be the largest of memory_options_bytes")
        if self.vendor == "apple" and not self.unified_memory:
            raise ValueError("Apple entries have unified_memory: true")
        return self

    @property
    def memory_sizes(self) -> list[int]:
        """Every memory size this entry comes in (one unless it lists memory options)."""
        return [int(m) for m in self.memory_options_bytes] or [int(self.vram_bytes)]

    @property
    def usable_bytes(self) -> int:
        """What a real card reports as its total where the database knows it, else the nominal size."""
        return int(self.usable_vram_bytes) if self.usable_vram_bytes is not None else int(self.vram_bytes)


def _cc_tuple(cc: str) -> tuple[int, int]:
    major, _, minor = cc.partition(".")
    return int(major), int(minor or 0)


# ---- loading -------------------------------------------------------------------------------------------------


def default_directory() -> Path:
    from planner.data.paths import hardware_db

    return hardware_db() / "gpus"


def load_gpus(directory: Path | None = None) -> list[GpuSpec]:
    """All GPU entries of every *.yaml in `directory` (default: the shipped hardware_db/gpus), in file order."""
    return list(_load(Path(directory or default_directory()).resolve()))


@cache
def _load(directory: Path) -> tuple[GpuSpec, ...]:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise GpuDatabaseError(f"no GPU database files (*.yaml) in {directory}")
    specs: list[GpuSpec] = []
    for path in files:
        specs.extend(_load_file(path))
    _check_unique_names(specs)
    return tuple(specs)


def _load_file(path: Path) -> list[GpuSpec]:
    from planner.data.loader import load_yaml

    document = load_yaml(path, "GPU database file")  # parsed once, then served from a JSON cache
    if not isinstance(document, dict) or not isinstance(document.get("gpus"), list):
        raise GpuDatabaseError(f"{path.name}: expected a mapping with a 'gpus' list")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise GpuDatabaseError(f"{path.name}: 'defaults' must be a mapping")
    specs = []
    for number, entry in enumerate(document["gpus"], start=1):
        label = f"entry {number}" + (f" ({entry.get('name')!r})" if isinstance(entry, dict) else "")
        if not isinstance(entry, dict):
            raise GpuDatabaseError(f"{path.name}: {label}: expected a mapping")
        try:
            specs.append(GpuSpec.model_validate({**defaults, **entry}))
        except ValidationError as err:
            problem = err.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "entry"
            raise GpuDatabaseError(f"{path.name}: {label}: {where}: {problem['msg']}") from err
    return specs


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_unique_names(specs: Iterable[GpuSpec]) -> None:
    """Two rows answering to the same normalised name would make matching depend on file order silently."""
    owner: dict[str, str] = {}
    for spec in specs:
        for key in {normalize(n) for n in (spec.name, *spec.aliases)}:
            if key in owner and owner[key] != spec.name:
                raise GpuDatabaseError(f"{spec.name!r} and {owner[key]!r} both answer to the name {key!r}")
            owner[key] = spec.name


# ---- names ---------------------------------------------------------------------------------------------------

# Words that vendors and drivers put around a model name; "Tesla P4", "NVIDIA Tesla P4" and "P4" are one card.
_NOISE_WORDS = {"nvidia", "tesla", "geforce", "quadro", "amd", "ati", "radeon", "instinct", "intel", "apple"}
_NOISE_TRAILERS = {"graphics"}
# Words that tell variants of one model apart: memory size and type, form factor.
_VARIANT_WORD = re.compile(r"^(\d+(\.\d+)?gb|pcie|sxm\d?|hbm\d?e?|gddr\dx?|\d+ core)$")


def normalize(name: str) -> str:
    """Lower-case words without vendor noise: "NVIDIA GeForce RTX 3080Ti" -> "rtx 3080 ti"."""
    text = name.lower().replace("(r)", " ").replace("(tm)", " ")
    text = re.sub(r"[^a-z0-9.]+", " ", text)
    text = re.sub(r"(?<![a-z0-9])(\d+(?:\.\d+)?)\s*(?:gib|gb|g)(?![a-z0-9])", r"\1gb", text)  # 80 GB -> 80gb
    text = re.sub(r"(\d)(ti|super|xtx|xt)(?![a-z0-9])", r"\1 \2", text)  # 3080ti -> 3080 ti
    text = re.sub(r"(?<![a-z0-9.])(\d+) core(?: gpu)?(?![a-z0-9])", r"\1core", text)  # "40-core GPU"
    words = [w.strip(".") for w in text.split()]
    return " ".join(w for w in words if w and w not in _NOISE_WORDS and w not in _NOISE_TRAILERS)


def family_key(name: str) -> str:
    """The model without its variant words: "a100 sxm4 80gb" -> "a100", "m3 max 30core" -> "m3 max"."""
    return " ".join(w for w in normalize(name).split() if not _VARIANT_WORD.match(w) and not w.endswith("core"))


def memory_hint(name: str) -> int | None:
    """A memory size written into a name ("A100 80GB", "M2 Max 32 GB"), in bytes (product names mean GiB)."""
    found = re.findall(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)gb(?![a-z0-9])", normalize(name))
    return int(float(found[-1]) * GIB) if found else None


@dataclass(frozen=True)
class _Index:
    exact: dict[str, list[GpuSpec]]
    family: dict[str, list[GpuSpec]]
    names: dict[str, str]  # normalised name or alias -> display name, for suggestions


@cache
def _index(directory: Path | None) -> _Index:
    exact: dict[str, list[GpuSpec]] = {}
    family: dict[str, list[GpuSpec]] = {}
    names: dict[str, str] = {}
    for spec in load_gpus(directory):
        for written in (spec.name, *spec.aliases):
            key = normalize(written)
            if spec not in exact.setdefault(key, []):
                exact[key].append(spec)
            names.setdefault(key, spec.name)
            fam = family_key(written)
            if fam and spec not in family.setdefault(fam, []):
                family[fam].append(spec)
    return _Index(exact, family, names)


def _memory_distance(spec: GpuSpec, memory: int) -> tuple[float, int]:
    """How far `memory` is from the nearest size the entry comes in (relative), and that size."""
    return min((abs(size - memory) / size, size) for size in spec.memory_sizes)


def _pick(candidates: list[GpuSpec], query: str, memory: int | None) -> GpuSpec:
    words = set(normalize(query).split())

    def overlap(spec: GpuSpec) -> int:
        return max(len(words & set(normalize(n).split())) for n in (spec.name, *spec.aliases))

    if memory is not None:
        close = [c for c in candidates if _memory_distance(c, memory)[0] <= _MEMORY_TOLERANCE]
        if close:
            best = min(close, key=lambda c: (_memory_distance(c, memory)[0], -overlap(c)))
            size = _memory_distance(best, memory)[1]
            if len(best.memory_sizes) > 1 and size != best.vram_bytes:
                # A unified-memory chip sold in several sizes: describe the configuration that was asked for.
                return best.model_copy(update={"vram_bytes": ByteSize(size)})
            return best
    return max(candidates, key=overlap)  # max keeps the first of equals: file order is the tie-break


def match_gpu(name: str, memory_total_bytes: int | None = None, *, directory: Path | None = None) -> GpuSpec | None:
    """The database entry for a GPU name as NVML, ROCm, Metal or a person writes it; None when unknown.

    `memory_total_bytes` (what the driver reports) picks between variants that share a name: A100 40 vs 80 GB,
    RTX 4060 Ti 8 vs 16 GB, an M2 Max with 32 or 96 GB. Without it a memory size written in the name is used.
    """
    if not name.strip():
        return None
    index = _index(Path(directory).resolve() if directory else None)
    memory = memory_total_bytes if memory_total_bytes is not None else memory_hint(name)
    exact = index.exact.get(normalize(name), [])
    if exact and (memory is None or any(_memory_distance(s, memory)[0] <= _MEMORY_TOLERANCE for s in exact)):
        return _pick(exact, name, memory)
    family = index.family.get(family_key(name), [])
    if family:
        return _pick(family, name, memory)
    return exact[0] if exact else None


@dataclass(frozen=True)
class GpuResolution:
    """What a --gpu name resolved to, and what the user should know about how (a variant picked, a custom size)."""

    spec: GpuSpec
    notes: tuple[str, ...] = ()


# Words users leave out: "3090" means the RTX 3090, "p40" the Tesla P40.
_SERIES_WORDS = frozenset({"rtx", "gtx", "tesla", "quadro", "radeon", "rx", "instinct", "arc"})
_MAX_CUSTOM_VRAM = 1 << 40  # 1 TiB: no single accelerator comes close; a bigger "size" is a typo


def resolve_gpu_name(name: str, *, directory: Path | None = None) -> GpuResolution | None:
    """The entry a person means by `name`, with notes: the variant a size picks ("RTX 3060 8GB"), a custom-VRAM
    what-if for a size the database does not know for that card ("RTX 4090 48GB", modded), compact spellings
    ("3090", "rtx3090", "4060ti"), and the variants an ambiguous name could mean ("H100"). None when unknown."""
    if not name.strip():
        return None
    index = _index(Path(directory).resolve() if directory else None)
    memory = memory_hint(name)
    exact = index.exact.get(normalize(name), [])
    if exact and (memory is None or any(_memory_distance(s, memory)[0] <= _MEMORY_TOLERANCE for s in exact)):
        return GpuResolution(_pick(exact, name, memory), _size_note(name, _pick(exact, name, memory), memory))
    family = index.family.get(family_key(name), []) or _compact_family(name, index)
    if not family:
        return GpuResolution(exact[0]) if exact else None
    if memory is not None:
        if any(_memory_distance(s, memory)[0] <= _MEMORY_TOLERANCE for s in family):
            return GpuResolution(_pick(family, name, memory))
        return _custom_size(name, _pick(family, name, None), memory)
    picked = _pick(family, name, None)
    names = list(dict.fromkeys(s.name for s in family))
    notes = list(_size_note(name, picked, None))
    if len(names) > 1:
        others = [n for n in names if n != picked.name]
        notes.insert(
            0,
            f"--gpu {name!r} could be any of {', '.join(names)}: planned as {picked.name}; name one "
            f"(e.g. --gpu {others[0]!r}) to plan for another",
        )
    return GpuResolution(picked, tuple(notes))


def _size_note(name: str, spec: GpuSpec, memory: int | None) -> tuple[str, ...]:
    """A chip sold in several memory sizes, none written: say which one is planned and how to pick another."""
    sizes = spec.memory_sizes
    if memory is not None or len(sizes) < 2:
        return ()
    listed = ", ".join(f"{size / GIB:g}" for size in sizes)
    return (
        f"--gpu {name!r}: {spec.name} comes with {listed} GB; planned with {int(spec.vram_bytes) / GIB:g} GB "
        f"(write e.g. --gpu '{spec.name} {sizes[0] / GIB:g}GB' for another)",
    )


def _custom_size(name: str, base: GpuSpec, memory: int) -> GpuResolution:
    """A memory size the database does not list for this card: a what-if card with that much memory and the
    listed card's other specs, said plainly (a modded 48 GB RTX 4090 is real; a narrower-bus variant is slower)."""
    if memory <= 0 or memory > _MAX_CUSTOM_VRAM:
        raise ValueError(f"--gpu {name!r}: {memory / GIB:g} GB is not a memory size an accelerator has")
    known = ", ".join(f"{size / GIB:g}" for size in base.memory_sizes)
    custom = base.model_copy(
        update={"vram_bytes": ByteSize(memory), "usable_vram_bytes": None, "memory_options_bytes": []}
    )
    note = (
        f"--gpu {name!r}: planner's database lists the {base.name} with {known} GB only; planning a what-if card "
        f"with {memory / GIB:g} GB and the {base.name}'s other specs ({base.memory_bandwidth_gbs:g} GB/s); a real "
        "variant with a different memory bus is faster or slower than this"
    )
    return GpuResolution(custom, (note,))


def _compact_family(name: str, index: _Index) -> list[GpuSpec]:
    """Entries for a name written without spaces or series word: "rtx3090", "3090", "4060ti", "p40"."""
    bare = family_key(name)  # the variant words (16gb, pcie) pick among the family afterwards
    split = family_key(re.sub(r"(?<=[a-z])(?=\d)", " ", bare))  # rtx3090 -> rtx 3090 (a100 is also tried whole)
    wanted = {frozenset(w for w in key.split() if w not in _SERIES_WORDS) for key in (bare, split)}
    wanted.discard(frozenset())
    found: list[GpuSpec] = []
    for key, specs in index.family.items():
        if frozenset(w for w in key.split() if w not in _SERIES_WORDS) in wanted:
            found += [s for s in specs if s not in found]
    return found


def search_gpus(query: str | None = None, *, directory: Path | None = None) -> list[GpuSpec]:
    """Entries for `planner gpus QUERY`: the card the query names (all its variants), else every entry whose
    words start with each query word (name, aliases, architecture, chip, vendor, family); everything for no query."""
    specs = load_gpus(directory)
    if not query or not query.strip():
        return specs
    index = _index(Path(directory).resolve() if directory else None)
    named = index.exact.get(normalize(query)) or index.family.get(family_key(query))
    if named:
        return list(named)
    wanted = _words(query)
    return [spec for spec in specs if all(any(w.startswith(q) for w in _search_words(spec)) for q in wanted)]


def _words(text: str) -> list[str]:
    """Plain lower-case words, vendor words kept (so "apple" or "tesla" can be searched for)."""
    return re.sub(r"[^a-z0-9.]+", " ", text.lower().replace("(r)", " ").replace("(tm)", " ")).split()


def _search_words(spec: GpuSpec) -> frozenset[str]:
    texts = (spec.name, *spec.aliases, spec.architecture, spec.chip or "", spec.vendor, spec.family)
    words = {w for text in texts for w in (*_words(text), *normalize(text).split())}
    return frozenset(words | {spec.compute_capability or "", spec.gfx_target or ""})


def closest_names(query: str, n: int = 3, *, directory: Path | None = None) -> list[str]:
    """Display names of the entries whose names look most like `query` (for "did you mean" messages).

    difflib's similarity ratio, plus a bonus for a shared beginning: a mistyped "RTX 3099" should suggest the
    RTX 3090 family before the RTX 5090.
    """
    index = _index(Path(directory).resolve() if directory else None)
    wanted = normalize(query)
    if not wanted:
        return []

    def score(key: str) -> float:
        matcher = difflib.SequenceMatcher(None, wanted, key)
        prefix = len(os.path.commonprefix([wanted, key]))
        return matcher.ratio() + 0.5 * prefix / len(wanted)

    result: list[str] = []
    for key in sorted(index.names, key=score, reverse=True):
        if score(key) < 0.6:
            break
        if index.names[key] not in result:
            result.append(index.names[key])
        if len(result) == n:
            break
    return result


# ---- into the Hardware model ---------------------------------------------------------------------------------


def gpu_from_spec(spec: GpuSpec, index: int) -> Gpu:
    """A what-if GPU: the database entry as the planner's Gpu, with the memory a real card leaves usable."""
    return Gpu(
        index=index,
        name=spec.name,
        vendor=spec.vendor,
        architecture=spec.architecture,
        compute_capability=spec.compute_capability,
        gfx_target=spec.gfx_target,
        memory_total_bytes=int(spec.vram_bytes),
        memory_free_bytes=spec.usable_bytes,
        memory_used_bytes=0,
        memory_bandwidth_gbs=spec.memory_bandwidth_gbs,
        fp32_tflops=spec.fp32_tflops,
        fp16_tflops=spec.fp16_tflops,
        fp16=spec.fp16,
        fp16_crippled=spec.fp16_crippled,
        bf16=spec.bf16,
        tensor_cores=spec.tensor_cores,
        unified_memory=spec.unified_memory,
        power_limit_watts=float(spec.tdp_watts) if spec.tdp_watts else None,
        db_match=spec.name,
        source="what-if",
    )


def enrich_gpu(gpu: Gpu, *, directory: Path | None = None) -> tuple[Gpu, str | None]:
    """Fill what the driver does not say (bandwidth, FP16/BF16 abilities, TFLOPS) from the database.

    What the driver reported wins over the database; memory always comes from the driver. Returns the GPU and a
    warning when the card is not in the database (or the match contradicts the driver's compute capability).
    """
    spec = match_gpu(gpu.name, gpu.memory_total_bytes, directory=directory)
    if spec is None:
        return gpu, (
            f"GPU '{gpu.name}' is not in planner's hardware database: using only what the driver reports "
            "(no memory bandwidth, so speed estimates are rough)"
        )
    if gpu.compute_capability and spec.compute_capability and gpu.compute_capability != spec.compute_capability:
        return gpu, (
            f"GPU '{gpu.name}' reports compute capability {gpu.compute_capability} but the hardware database entry "
            f"{spec.name!r} says {spec.compute_capability}: not using the database entry"
        )
    facts = {
        "architecture": spec.architecture,
        "compute_capability": spec.compute_capability,
        "gfx_target": spec.gfx_target,
        "memory_bandwidth_gbs": spec.memory_bandwidth_gbs,
        "fp32_tflops": spec.fp32_tflops,
        "fp16_tflops": spec.fp16_tflops,
        "fp16": spec.fp16,
        "fp16_crippled": spec.fp16_crippled,
        "bf16": spec.bf16,
        "tensor_cores": spec.tensor_cores,
    }
    update = {field: value for field, value in facts.items() if getattr(gpu, field) is None and value is not None}
    update["db_match"] = spec.name
    if spec.unified_memory:
        update["unified_memory"] = True
    return gpu.model_copy(update=update), None


class GpuList(RootModel[list[GpuSpec]]):
    """The result of `planner gpus`: --json prints this object, the table draws it."""
