"""The quant table (hardware_db/quants.yaml) and published quality figures (hardware_db/quality/*.yaml).

Block sizes and bytes per block are not stored: they come from gguf.GGML_QUANT_SIZES. The YAML keeps what the
gguf package lacks: file-type bits per weight, measured quality loss with its source, hardware caveats and
the imatrix requirement.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from planner.data.paths import hardware_db
from planner.errors import BadInput
from planner.types.plan import Quality


class GgmlTypeInfo(BaseModel):
    name: str
    family: str
    notes: str | None = None
    cuda_mmq: bool = False  # has CUDA quantized mat-mul kernels (needs dp4a, cc >= 6.1)
    requires_imatrix: bool = False
    cpu_repack: bool = False  # repacked into interleaved blocks on CPU-only builds


class Measurement(BaseModel):
    metric: Literal["ppl_increase", "ppl_increase_pct", "kld", "perplexity"]
    value: float
    model: str
    source: str  # a key of QuantTable.sources
    imatrix: bool | None = None
    size_gib: float | None = None
    f16_ppl: float | None = None


class EffectiveBpw(BaseModel):
    value: float
    size_gib: float | None = None
    tg128: float | None = None
    source: str


class FileTypeInfo(BaseModel):
    name: str
    id: int  # general.file_type (llama_ftype)
    base_type: str
    nominal_bpw: float
    imatrix_required: bool = False
    mix: str = ""
    bpw_llama31_8b: EffectiveBpw | None = None  # what the mix rules give on a real model
    quality: list[Measurement] = Field(default_factory=list)

    @property
    def bpw(self) -> float:
        """Bits per weight to expect of a whole file: measured on Llama-3.1-8B where known, else nominal."""
        return self.bpw_llama31_8b.value if self.bpw_llama31_8b else self.nominal_bpw


class HardwareCaveat(BaseModel):
    id: str
    types: list[str]  # quant names, or "*quantized" / "*iquant"
    device: Literal["cuda", "cpu", "any"] = "any"
    cc_at_least: float | None = None
    cc_below: float | None = None
    text: str
    source: str


class QuantTable(BaseModel):
    sources: dict[str, str]
    ggml_type_sources: dict[str, str]
    ggml_types: dict[str, GgmlTypeInfo]
    file_type_sources: dict[str, str]
    file_types: dict[str, FileTypeInfo]
    hardware_caveats: list[HardwareCaveat]


class QualityTable(BaseModel):
    family: str
    aliases: list[str]
    variant: str = ""
    metric: Literal["perplexity"] = "perplexity"
    metric_note: str = ""
    source: str
    caveats: list[str] = Field(default_factory=list)
    columns: list[str]
    rows: dict[str, list[float]]


@cache
def load_quants(path: Path | None = None) -> QuantTable:
    raw = _load_yaml(path or hardware_db() / "quants.yaml")
    for section in ("ggml_types", "file_types"):
        for name, row in raw.get(section, {}).items():
            row["name"] = name
    return QuantTable.model_validate(raw)


@cache
def load_quality_tables(folder: Path | None = None) -> tuple[QualityTable, ...]:
    folder = folder or hardware_db() / "quality"
    return tuple(QualityTable.model_validate(_load_yaml(p)) for p in sorted(folder.glob("*.yaml")))


def file_type(name: str) -> FileTypeInfo:
    """A llama.cpp file type by name, any case ("q4_k_m", "Q4_K_M", "fp16" -> F16)."""
    table = load_quants()
    key = _canonical(name)
    if key in table.file_types:
        return table.file_types[key]
    known = ", ".join(table.file_types)
    raise BadInput(f"unknown quantization {name!r} (llama.cpp file types: {known})")


def ggml_type(name: str) -> GgmlTypeInfo:
    table = load_quants()
    key = _canonical(name)
    if key in table.ggml_types:
        return table.ggml_types[key]
    raise BadInput(f"unknown ggml type {name!r}")


def source_text(key: str) -> str:
    """The full citation for a source key used in quants.yaml."""
    return load_quants().sources.get(key, key)


# --- file names --------------------------------------------------------------------------------------

# A quant tag between separators: q4_k_m, IQ4_XS, Q8_0, Q4_0_4_4, f16, bf16, fp16, mxfp4_moe, tq1_0.
_QUANT_IN_NAME = re.compile(
    r"(?<![a-z0-9])((?:i?q|tq)\d(?:_[a-z0-9]+)+|bf16|fp16|f16|fp32|f32|mxfp4(?:_moe)?|nvfp4)(?![a-z0-9])",
    re.IGNORECASE,
)


def quant_from_filename(name: str) -> str | None:
    """The quant a GGUF file name announces, upper case ("...-q4_k_m-00001-of-00002.gguf" -> "Q4_K_M")."""
    stem = Path(name).name
    if stem.lower().endswith(".gguf"):
        stem = stem[: -len(".gguf")]
    stem = re.sub(r"-\d{5}-of-\d{5}$", "", stem)
    matches = _QUANT_IN_NAME.findall(stem)
    if not matches:
        return None
    tag = _canonical(matches[-1])  # the tag sits at the end: "Llama-3-8B-Q8_0"
    return "MXFP4_MOE" if tag == "MXFP4" else tag  # gpt-oss "mxfp4" files are llama.cpp's MXFP4_MOE type


def _canonical(name: str) -> str:
    key = name.strip().upper()
    return {"FP16": "F16", "FP32": "F32"}.get(key, key)


# --- quality --------------------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z0-9])", re.IGNORECASE)


def quality_for(model: str, size_label: str | None, quant: str) -> Quality | None:
    """Published perplexity for this model family, size and quant (e.g. Qwen1.5-14B Q4_K_M), if any.

    `model` may be a family ("qwen1.5"), a repo ("Qwen/Qwen1.5-14B-Chat-GGUF") or a file name; the size comes
    from `size_label` ("14B") or, when that is None, from `model` itself.
    """
    text = model.lower()
    for table in load_quality_tables():
        if not any(alias in text for alias in table.aliases):
            continue
        size = _size_key(size_label or _size_in(text), table)
        column = _canonical(quant)
        if size is None or column not in table.columns:
            return None
        value = table.rows[size][table.columns.index(column)]
        reference = table.rows[size][table.columns.index("F16")] if "F16" in table.columns else None
        note = f"{table.family}-{size}-{table.variant} {column}".replace("--", "-")
        if reference is not None and column != "F16":
            note += f"; F16 {reference} in the same table"
        return Quality(metric=table.metric, value=value, source=table.source, note=note)
    return None


def generic_quality(quant: str) -> Quality | None:
    """Perplexity increase of a file type on Llama-3-8B (llama.cpp's KLD scoreboard), when no family data exists.

    Uses the imatrix row for types that require one, else the plain row. Larger models lose less.
    """
    try:
        info = file_type(quant)
    except BadInput:
        return None
    rows = [m for m in info.quality if m.metric == "ppl_increase" and m.source == "ppl_readme"]
    wanted = [m for m in rows if bool(m.imatrix) == info.imatrix_required] or rows
    if not wanted:
        return None
    m = wanted[0]
    variant = "with imatrix" if m.imatrix else "without imatrix"
    return Quality(
        metric="ppl_increase",
        value=m.value,
        source=source_text(m.source),
        note=f"{info.name} on {m.model}, {variant}; larger models lose less",
    )


def measured_loss(quant: str, n_params: int) -> Quality | None:
    """The file type's measured quality loss on the published model nearest in size: Llama-3-70B's perplexity
    increase in percent for models of 30B and more (XiongjieDai's table), else llama.cpp's Llama-3-8B
    scoreboard (generic_quality). The note names the model measured: larger models lose less."""
    try:
        info = file_type(quant)
    except BadInput:
        return None
    if n_params >= 30e9:  # one table for every quant of a big model: figures in one unit, comparable
        rows = [m for m in info.quality if m.metric == "ppl_increase_pct" and m.model == "Llama-3-70B"]
        if not rows:
            return None
        m = rows[0]
        return Quality(
            metric="ppl_increase_pct",
            value=m.value,
            source=source_text(m.source),
            note=f"{info.name}: perplexity increase vs F16 in percent, measured on {m.model}",
        )
    return generic_quality(quant)  # its note names the model measured


def _size_in(text: str) -> str | None:
    match = _SIZE_RE.search(text)
    return match.group(1) + "B" if match else None


def _size_key(label: str | None, table: QualityTable) -> str | None:
    if not label:
        return None
    wanted = label.strip().upper()
    return next((k for k in table.rows if k.upper() == wanted), None)


# --- hardware -----------------------------------------------------------------------------------------


def hardware_caveats(quant: str, compute_capability: float | str | None) -> list[str]:
    """Warnings about running `quant` on a CUDA GPU of this compute capability, or on the CPU when None.

    `compute_capability` is a number (6.1) or nvidia-smi's text ("6.1").
    """
    table = load_quants()
    name = _canonical(quant)
    cc = _cc(compute_capability)
    device = "cpu" if cc is None else "cuda"
    types = _type_names(name, table)
    out: list[str] = []
    for caveat in table.hardware_caveats:
        if caveat.device not in ("any", device):
            continue
        if not _applies(caveat.types, name, types, table):
            continue
        if cc is not None:
            if caveat.cc_at_least is not None and cc < caveat.cc_at_least:
                continue
            if caveat.cc_below is not None and cc >= caveat.cc_below:
                continue
        out.append(caveat.text)
    return out


def _cc(value: float | str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadInput(f"compute capability should look like 6.1, got {value!r}") from None


def _type_names(name: str, table: QuantTable) -> set[str]:
    """The quant and its base ggml type (Q4_K_M -> {Q4_K_M, Q4_K})."""
    names = {name}
    if name in table.file_types:
        names.add(table.file_types[name].base_type)
    return names


def _applies(patterns: list[str], name: str, types: set[str], table: QuantTable) -> bool:
    for pattern in patterns:
        if pattern == name:
            return True
        if pattern == "*quantized" and any(
            t in table.ggml_types and table.ggml_types[t].family not in ("float", "integer") for t in types
        ):
            return True
        if pattern == "*iquant" and any(
            t in table.ggml_types and table.ggml_types[t].family == "i-quant" for t in types
        ):
            return True
    return False


def _load_yaml(path: Path) -> dict[str, Any]:
    from planner.data.loader import load_mapping

    return load_mapping(path)
