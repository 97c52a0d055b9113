"""The published speed rows of hardware_db/speed_calibration.yaml, turned into planner placements.

Each row becomes a `Case`: the GPU(s) from the hardware database, model facts (the offline catalog entry when the
quant exists there, else built from the row's shape and size), the placement the published run used (full offload,
or the row's own `placement`), and the SpeedTerms that planner's speed model evaluates. The bench
(bench/speed_vs_published.py) and the tests use this module, so both measure the same thing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from planner.core.speed import SpeedTerms
from planner.types.hardware import Cpu, Gpu
from planner.types.model import ModelFacts
from planner.types.plan import MemoryUse, Settings

GIB = 1 << 30
FULL_OFFLOAD = 999  # -ngl 99 in llama-bench: every block and the output layer


class RowCpu(BaseModel):
    model: str
    physical_cores: int
    memory_bandwidth_gbs: float
    source: str


class RowPlacement(BaseModel):
    blocks_on_gpu: int
    output_on_gpu: bool
    ctx_size: int
    batch_size: int
    ubatch_size: int
    threads: int
    cache_type: str = "f16"
    why: str


class Shape(BaseModel):
    arch: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_vocab: int
    context_length: int
    tied_embeddings: bool = False
    source: str


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    gpu: str
    gpu_db: str
    gpu_count: int = 1
    gpu_db_note: str | None = None
    model: str
    shape: str
    catalog: str | None = None
    quant: str
    size_gib: float | None = None
    params_b: float
    pp: float | None = None
    pp_test: str
    pp_tokens: int = 512
    tg: float | None = None
    tg_test: str
    context_fill: int
    backend: str
    flash_attn: int | None = None
    date: str | None = None
    build: str | None = None  # the llama.cpp build as published (commit and build number), when known
    cuda_graphs_build: bool
    placement: RowPlacement | None = None
    cpu: RowCpu | None = None
    source: str
    source_type: str
    notes: str | None = None
    fit: bool
    not_fitted_because: str | None = None


@dataclass(frozen=True)
class Case:
    row: Row
    facts: ModelFacts
    facts_basis: str
    settings: Settings
    memory: MemoryUse
    gpus: list[Gpu]
    cpu: Cpu


def calibration_file() -> Path:
    from planner.data.paths import hardware_db

    return hardware_db() / "speed_calibration.yaml"


@cache
def _load(path: Path) -> tuple[dict[str, Shape], tuple[Row, ...]]:
    from planner.data.loader import load_mapping

    data = load_mapping(path, "speed calibration file")
    shapes = {name: Shape(**value) for name, value in data.get("shapes", {}).items()}
    rows = tuple(Row(**{**r, "date": str(r["date"]) if r.get("date") is not None else None}) for r in data["rows"])
    return shapes, rows


def load_rows(path: Path | None = None) -> list[Row]:
    return list(_load(path or calibration_file())[1])


def _facts(row: Row, shapes: dict[str, Shape]) -> tuple[ModelFacts, str]:
    from planner.data.catalog import facts_from_catalog, find

    if row.catalog:
        entry = find(row.catalog)
        if entry is not None and any(q.quant == row.quant.upper() for q in entry.quants):
            return facts_from_catalog(entry, row.quant), f"catalog {entry.repo} {row.quant}"
    shape = shapes[row.shape]
    if row.size_gib is None:
        raise ValueError(f"{row.id}: no size and no catalog quant")
    size = int(row.size_gib * GIB)
    params = int(row.params_b * 1e9)
    per_param = size / params
    # embeddings at the file's average bytes per weight; the rest spread evenly over the blocks
    embed = int(shape.n_vocab * shape.n_embd * per_param)
    output = 0 if shape.tied_embeddings else embed
    layer = (size - embed - output) // shape.n_layer
    facts = ModelFacts(
        source=row.model,
        quant=row.quant,
        arch=shape.arch,
        name=row.model,
        n_layer=shape.n_layer,
        n_embd=shape.n_embd,
        n_head=shape.n_head,
        n_head_kv=shape.n_head_kv,
        head_dim_k=shape.head_dim,
        head_dim_v=shape.head_dim,
        n_ff=shape.n_ff,
        n_vocab=shape.n_vocab,
        context_length=shape.context_length,
        n_params=params,
        size_bytes=size,
        layer_bytes=[layer] * shape.n_layer,
        layer_expert_bytes=[0] * shape.n_layer,
        input_bytes=embed,
        output_bytes=output or embed,
        tied_embeddings=shape.tied_embeddings,
        origin="catalog",
    )
    return facts, f"shape {row.shape} + published size {row.size_gib} GiB"


def build_case(row: Row, path: Path | None = None) -> Case:
    """The placement the published run used, as planner objects."""
    from planner.core.memory import estimate_memory
    from planner.data.gpus import gpu_from_spec, match_gpu

    shapes, _rows = _load(path or calibration_file())
    spec = match_gpu(row.gpu_db)
    if spec is None:
        raise ValueError(f"{row.id}: {row.gpu_db!r} is not in the GPU database")
    gpus = [gpu_from_spec(spec, i) for i in range(row.gpu_count)]
    facts, basis = _facts(row, shapes)
    if row.cpu:
        cpu = Cpu(model=row.cpu.model, physical_cores=row.cpu.physical_cores, logical_cores=row.cpu.physical_cores)
        cpu = cpu.model_copy(update={"memory_bandwidth_gbs": row.cpu.memory_bandwidth_gbs})
    else:
        cpu = Cpu(model="not published (full offload)", physical_cores=8, logical_cores=16)
    p = row.placement
    if p is None:
        settings = Settings(n_gpu_layers=FULL_OFFLOAD, ctx_size=2048, batch_size=2048, ubatch_size=512, threads=8)
        memory = estimate_memory(facts, settings, gpus)
    else:
        settings = Settings(
            n_gpu_layers=p.blocks_on_gpu + (1 if p.output_on_gpu else 0),
            ctx_size=p.ctx_size,
            batch_size=p.batch_size,
            ubatch_size=p.ubatch_size,
            threads=p.threads,
            cache_type_k=p.cache_type,
            cache_type_v=p.cache_type,
        )
        memory = _old_ngl_placement(facts, settings, gpus, p)
    return Case(row, facts, basis, settings, memory, gpus, cpu)


def _old_ngl_placement(facts: ModelFacts, settings: Settings, gpus: list[Gpu], p: RowPlacement) -> MemoryUse:
    """Before b7467 `-ngl N` (N <= n_layer) put the last N blocks on the GPU and kept the output layer on the CPU;
    today's rule offloads the output first. Place all blocks, then move the output layer back to the host."""
    from planner.core.memory import estimate_memory

    memory = estimate_memory(facts, settings.model_copy(update={"n_gpu_layers": p.blocks_on_gpu + 1}), gpus)
    if not p.output_on_gpu:
        dev = next(d for d in memory.devices if d.output_layer)
        dev.weights_bytes -= facts.output_bytes
        dev.output_layer = False
        memory.host.weights_bytes += facts.output_bytes
    return memory


def terms_for(case: Case) -> SpeedTerms:
    """SpeedTerms of a case, with the build's CUDA-graph state: old Ampere+ builds ran without graphs."""
    from planner.core.speed import speed_terms

    terms = speed_terms(
        case.facts,
        case.settings,
        case.memory,
        case.gpus,
        case.cpu,
        context_fill=case.row.context_fill,
        backend=case.row.backend,
    )
    if terms.t0_key == "ampere_plus" and not case.row.cuda_graphs_build:
        terms = dataclasses.replace(terms, t0_key="ampere_plus_no_graphs")
    return terms
