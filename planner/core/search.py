"""The solver: candidates (model files) x hardware -> the best Plan, with alternatives, under a stated margin.

Pure: it gets every candidate with its ModelFacts already read (planner/models/candidates.py reads them) and does
no I/O of its own; planner/core/planning.py turns its choice into a Plan.

Order of preference, as a demanding user would choose by hand:

1. everything on the GPU(s) at a useful context (>= 4096 tokens, or the model's own maximum if smaller), with
   f16 KV first, then q8_0 KV (negligible quality cost, half the memory), before giving up context;
2. the best quality quant that does that; among equals, the larger context (up to 32768: longer contexts cost
   memory and prompt time without helping most chats; --ctx asks for more);
3. if nothing fits fully: partial offload with as many layers as fit, for the best quality that still generates at
   a usable speed; then CPU only; then, for a model larger than RAM, the disk-bound estimate (exit 3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from planner.core.capacity import (
    fits as _fits,
)
from planner.core.capacity import (
    gpu_capacity,
    gpu_room,
    host_capacity,
    margins_for,
    reachable_bytes,
)
from planner.core.memory import CUDA_FA_PAIRS, MiB, estimate_memory
from planner.core.speed import estimate_speed, quant_family
from planner.errors import BadInput
from planner.types.hardware import Gpu, Hardware
from planner.types.model import ModelFacts, ModelFile
from planner.types.plan import MemoryUse, Overrides, Quality, Runtime, Settings, Speed

CTX_LADDER = (32768, 16384, 8192, 4096, 2048, 1024, 512)
USEFUL_CTX = 4096
DEFAULT_BATCH = 2048
DEFAULT_UBATCH = 512
USABLE_TOKENS_PER_S = 5.0  # below this a chat feels broken: prefer a smaller quant that is faster
LLAMA_CPP_BUILD = "b10454"  # the llama.cpp behaviour modelled (llama-cpp-python 0.3.35+ vendors >= b10454)


@dataclass(frozen=True)
class PeerQuality:
    """A published figure of a smaller sibling model (same family), for "14B Q2_K beats 7B F16" reasons."""

    name: str
    n_params: int
    quant: str
    perplexity: float
    source: str


@dataclass
class Candidate:
    """One model file that could be run, with its facts read beforehand (None only when it is out of reach:
    bigger than the GPUs and RAM together, so no plan will ever need its header)."""

    model: str  # display name, e.g. "Qwen1.5-14B-Chat"
    quant: str
    size_bytes: int
    loaded_facts: ModelFacts | None
    quality: Quality | None = None
    file: str | None = None
    peers: tuple[PeerQuality, ...] = field(default=())  # smaller siblings' published quality
    files: tuple[ModelFile, ...] = field(default=())  # every file (shards in order) with size and sha256
    revision: str | None = None  # the hub commit the listing came from

    @property
    def facts(self) -> ModelFacts:
        if self.loaded_facts is None:
            raise ValueError(f"{self.model} {self.quant}: its header was not read (the file is out of reach)")
        return self.loaded_facts


@dataclass
class Fit:
    settings: Settings
    memory: MemoryUse
    speed: Speed
    full_offload: bool
    where: str
    context_capped_from: int | None = None  # the larger context that would fit, when prompt speed capped it


def _fa_choice(facts: ModelFacts, gpus: list[Gpu], k: str, v: str, override: str | None) -> Literal["on", "off"]:
    if override == "on":
        return "on"
    if override == "off":
        return "off"
    head_ok = facts.head_dim_k in (40, 64, 72, 80, 96, 112, 128, 256) or facts.kv_lora_rank
    nvidia = any(g.vendor == "nvidia" for g in gpus)
    if nvidia and (not head_ok or (k, v) not in CUDA_FA_PAIRS):
        return "off"
    return "on"


def _kv_options(ov: Overrides, last_resort: bool) -> list[tuple[str, str]]:
    if ov.cache_type_k or ov.cache_type_v:
        k = ov.cache_type_k or ov.cache_type_v or "f16"
        v = ov.cache_type_v or ov.cache_type_k or "f16"
        if v not in ("f16", "f32", "bf16") and ov.flash_attn == "off":
            raise BadInput(f"a quantized V cache ({v}) needs flash attention: drop --flash-attn off or use -ctv f16")
        return [(k, v)]
    if ov.flash_attn == "off":
        return [("f16", "f16"), ("q8_0", "f16")] + ([("q4_0", "f16")] if last_resort else [])
    # q8_0 costs ~0.002 perplexity; q4_0 costs more and is kept for the tiers where nothing else fits
    return [("f16", "f16"), ("q8_0", "q8_0")] + ([("q4_0", "q4_0")] if last_resort else [])


def _ctx_options(facts: ModelFacts, ov: Overrides) -> list[int]:
    if ov.ctx_size:
        return [ov.ctx_size]
    top = facts.context_length or USEFUL_CTX
    ladder = [c for c in CTX_LADDER if c <= top]
    if top < CTX_LADDER[0] and top not in ladder:
        ladder.insert(0, top)
    return ladder or [top]


def _threads(hw: Hardware, ov: Overrides) -> int:
    # llama.cpp's own default (common.cpp cpu_get_num_math): performance cores only, one thread per core
    return ov.threads or max(1, hw.cpu.performance_cores or hw.cpu.physical_cores)


def _settings(
    facts: ModelFacts,
    hw: Hardware,
    ov: Overrides,
    *,
    ctx: int,
    kv: tuple[str, str],
    ngl: int,
    ubatch: int,
    runtime: Runtime = "llama-server",
    n_cpu_moe: int | None = None,
) -> Settings:
    fa = _fa_choice(facts, hw.gpus, kv[0], kv[1], ov.flash_attn)
    parallel = ov.parallel or 1
    gpus = hw.gpus
    split = ov.tensor_split
    if split is None and len(gpus) > 1:
        split = [round(g.usable_bytes / MiB / 1024, 2) for g in gpus]  # by free memory, in GiB
    return Settings(
        n_gpu_layers=ngl if gpus else 0,
        ctx_size=ctx,
        # llama-cpp-python keeps an n_batch x n_vocab float32 scores array in RAM: keep its batch at the ubatch
        batch_size=ov.batch_size or (max(DEFAULT_BATCH, ubatch) if runtime == "llama-server" else ubatch),
        ubatch_size=ubatch,
        flash_attn=fa,
        cache_type_k=kv[0],
        cache_type_v=kv[1],
        threads=_threads(hw, ov),
        parallel=parallel,
        kv_unified=True,
        tensor_split=split if len(gpus) > 1 else None,
        n_cpu_moe=n_cpu_moe if n_cpu_moe is not None else (ov.n_cpu_moe or 0),
        mmap=True if ov.mmap is None else ov.mmap,
        # llama-cpp-python keeps the library default swa_full=true (full-size SWA caches); llama-server does not
        swa_full=runtime == "llama-cpp-python",
    )


def _where(facts: ModelFacts, settings: Settings, gpus: list[Gpu]) -> str:
    if not gpus or settings.n_gpu_layers == 0:
        return "CPU"
    if settings.n_gpu_layers >= facts.n_layer + 1 and settings.n_cpu_moe == 0:
        return "GPU"
    return "GPU+CPU"


def _evaluate(
    facts: ModelFacts, hw: Hardware, settings: Settings, runtime: Runtime, margins: list[int], backend: str | None
) -> Fit:
    memory = estimate_memory(facts, settings, hw.gpus, runtime, margin_bytes=0)
    for dev, gpu, margin in zip(memory.devices, hw.gpus, margins):
        dev.capacity_bytes = max(0, gpu_capacity(gpu) - margin)
    memory.margin_bytes = max(margins, default=0)
    memory.host.capacity_bytes = host_capacity(hw)
    speed = estimate_speed(facts, settings, memory, hw.gpus, hw.cpu, backend=backend)
    where = _where(facts, settings, hw.gpus)
    return Fit(settings, memory, speed, where == "GPU", where)


@dataclass(frozen=True)
class Tier:
    """One level of the preference order: where the model must live and the least context accepted."""

    name: str
    full_offload: bool  # every layer on the GPU(s)
    min_ctx: int
    last_resort_kv: bool = False


# Full offload at a useful context beats everything; then full offload at 2048 (still a real chat); then partial
# offload at a useful context; then whatever runs at all.
TIERS = (
    Tier("gpu", True, USEFUL_CTX),
    Tier("gpu-short", True, 2048),
    Tier("partial", False, USEFUL_CTX),
    Tier("partial-short", False, 2048, last_resort_kv=True),
    Tier("anything", False, 512, last_resort_kv=True),
)
CPU_TIERS = (Tier("cpu", False, USEFUL_CTX), Tier("cpu-short", False, 2048, True), Tier("cpu-any", False, 512, True))


def _min_bytes_on_gpu(facts: ModelFacts) -> int:
    """Lower bound of the GPU bytes of a full offload: every layer and the output, nothing else."""
    return sum(facts.layer_bytes) + facts.output_bytes


def fit_model(
    facts: ModelFacts, hw: Hardware, ov: Overrides, runtime: Runtime, margins: list[int], tier: Tier
) -> Fit | None:
    """The best settings for one model file within `tier`, or None. Memory grows with ctx and -ngl."""
    host_cap = host_capacity(hw)
    unified = any(g.unified_memory for g in hw.gpus)
    full = facts.n_layer + 1
    total_gpu = gpu_room(hw, margins)
    fixed_ngl = ov.n_gpu_layers
    if tier.full_offload:
        if not hw.gpus or (fixed_ngl is not None and fixed_ngl < full) or ov.n_cpu_moe:
            return None
        if _min_bytes_on_gpu(facts) > total_gpu:
            return None
    ubatches = [ov.ubatch_size] if ov.ubatch_size else [DEFAULT_UBATCH, 256]
    ctxs = [c for c in _ctx_options(facts, ov) if c >= min(tier.min_ctx, facts.context_length or tier.min_ctx)]
    if ov.ctx_size:
        ctxs = [ov.ctx_size]
    elif not tier.full_offload and hw.gpus and ctxs:
        # partly in RAM, every GPU layer is speed: take the tier's context, not more, and fit the most layers
        ctxs = ctxs[-1:]
    kvs = _kv_options(ov, tier.last_resort_kv)

    def attempt(ctx: int, kv: tuple[str, str], ngl: int, ub: int) -> Fit:
        settings = _settings(facts, hw, ov, ctx=ctx, kv=kv, ngl=ngl, ubatch=ub, runtime=runtime)
        return _evaluate(facts, hw, settings, runtime, margins, ov.backend)

    if tier.full_offload or not hw.gpus:
        ngl = full if hw.gpus else 0
        for ctx in ctxs:
            for kv in kvs:
                for ub in ubatches:
                    fit = attempt(ctx, kv, ngl, ub)
                    if _fits(fit.memory, host_cap, unified):
                        return fit
        return None

    def fits(fit: Fit) -> bool:
        return _fits(fit.memory, host_cap, unified)

    if facts.is_moe and fixed_ngl is None and ov.n_cpu_moe is None:
        # MoE: keep every layer's attention and shared weights on the GPU and move the experts of the first N
        # layers to RAM (--n-cpu-moe): far faster than leaving whole layers behind, since only the used experts
        # are read per token. The smallest N that fits.
        for ctx in ctxs:
            for kv in kvs:

                def with_cpu_moe(n: int, ctx: int = ctx, kv: tuple[str, str] = kv) -> Fit:
                    settings = _settings(
                        facts, hw, ov, ctx=ctx, kv=kv, ngl=full, ubatch=ubatches[0], runtime=runtime, n_cpu_moe=n
                    )
                    return _evaluate(facts, hw, settings, runtime, margins, ov.backend)

                best = _first_that_fits(list(range(1, facts.n_layer + 1)), with_cpu_moe, fits)
                if best is not None:
                    return best

    # partial offload: the most layers that fit
    ngl_options = [fixed_ngl] if fixed_ngl is not None else list(range(full, -1, -1))
    for ctx in ctxs:
        for kv in kvs:

            def at(ngl: int, ctx: int = ctx, kv: tuple[str, str] = kv) -> Fit:
                return attempt(ctx, kv, ngl, ubatches[0])

            best = _first_that_fits(ngl_options, at, fits)
            if best is not None:
                return best
    return None


def _first_that_fits(values: list[int], evaluate: Callable[[int], Fit], fits: Callable[[Fit], bool]) -> Fit | None:
    """Binary search `values`, ordered from the most memory to the least, for the first whose plan fits."""
    best: Fit | None = None
    lo, hi = 0, len(values) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        fit = evaluate(values[mid])
        if fits(fit):
            best, hi = fit, mid - 1
        else:
            lo = mid + 1
    return best


def closest_attempt(facts: ModelFacts, hw: Hardware, ov: Overrides, runtime: Runtime, margins: list[int]) -> Fit:
    """What the smallest sensible setting would need: shown when nothing fits."""
    ctx = ov.ctx_size or min(2048, facts.context_length or 2048)
    kv = _kv_options(ov, True)[-1]
    ngl = ov.n_gpu_layers if ov.n_gpu_layers is not None else (facts.n_layer + 1 if hw.gpus else 0)
    settings = _settings(facts, hw, ov, ctx=ctx, kv=kv, ngl=ngl, ubatch=ov.ubatch_size or 256, runtime=runtime)
    return _evaluate(facts, hw, settings, runtime, margins, ov.backend)


def choose(
    candidates: list[Candidate],
    hw: Hardware,
    ov: Overrides,
    runtime: Runtime,
    margin_bytes: int | None,
    *,
    min_speed: float = USABLE_TOKENS_PER_S,
    full_offload_only: bool = False,
) -> tuple[Candidate | None, Fit | None, list[tuple[Candidate, Fit | None]]]:
    """The best-quality candidate of the best tier; candidates come best quality first.

    Returns the choice, its fit, and (candidate, its best fit in any tier or None) for the alternatives table.
    """
    margins = margins_for(hw, margin_bytes)
    best_fit: dict[int, Fit | None] = {}
    chosen: tuple[Candidate, Fit] | None = None
    tiers: tuple[Tier, ...] = TIERS if hw.gpus else CPU_TIERS
    if full_offload_only and hw.gpus:
        tiers = tuple(t for t in tiers if t.full_offload)
    reach = reachable_bytes(hw, margins)
    for tier in tiers:
        for i, cand in enumerate(candidates):
            earlier = best_fit.get(i)
            if earlier is not None and earlier.full_offload and not tier.full_offload:
                continue
            if cand.size_bytes > reach:
                best_fit.setdefault(i, None)
                continue  # cannot fit anywhere: don't even read its header
            fit = fit_model(cand.facts, hw, ov, runtime, margins, tier)
            if fit is not None and best_fit.get(i) is None:
                best_fit[i] = fit
            else:
                best_fit.setdefault(i, None)
            last_tier = tier is tiers[-1]
            if fit is not None and chosen is None and (fit.speed.generation_tokens_per_s >= min_speed or last_tier):
                chosen = (cand, fit)
        if chosen is not None:
            break
    # fill the alternatives with each candidate's best fit in any tier
    for i, cand in enumerate(candidates):
        if best_fit.get(i) is None and cand.size_bytes <= reach:
            for tier in tiers:
                fit = fit_model(cand.facts, hw, ov, runtime, margins, tier)
                if fit is not None:
                    best_fit[i] = fit
                    break
    evaluated = [(cand, best_fit.get(i)) for i, cand in enumerate(candidates)]
    if chosen is None and hw.gpus and ov.n_gpu_layers in (None, 0):
        # the GPUs cannot hold even the CUDA context and a compute buffer beside what they already carry: run on
        # the CPU alone, with llama.cpp kept off the GPUs
        cpu_only = hw.model_copy(update={"gpus": []})
        on_cpu, cpu_fit, _ = choose(candidates, cpu_only, ov, runtime, margin_bytes, min_speed=min_speed)
        if on_cpu is not None and cpu_fit is not None:
            cpu_fit.settings.gpu_off = True
            return on_cpu, cpu_fit, evaluated
    if chosen is None:
        return None, None, evaluated
    chosen = _prefer_quality_over_lowbit(chosen, evaluated)
    if ov.ctx_size is None:
        chosen = (chosen[0], _cap_context_by_prompt_speed(chosen, hw, ov, runtime, margins, tiers))
    return chosen[0], chosen[1], evaluated


PROMPT_FILL_SECONDS = 300  # a context the machine needs more than 5 minutes to read is not useful


def _cap_context_by_prompt_speed(
    chosen: tuple[Candidate, Fit], hw: Hardware, ov: Overrides, runtime: Runtime, margins: list[int], tiers: tuple
) -> Fit:
    """On slow hardware a long context costs minutes of prompt processing before the first token: keep the
    context to what the machine can read in PROMPT_FILL_SECONDS (never below the useful 4096)."""
    cand, fit = chosen
    limit = max(USEFUL_CTX, fit.speed.prompt_tokens_per_s * PROMPT_FILL_SECONDS)
    if fit.settings.ctx_size <= limit:
        return fit
    capped = max((c for c in CTX_LADDER if c <= limit), default=USEFUL_CTX)
    fixed = ov.model_copy(update={"ctx_size": capped})
    for tier in tiers:
        refit = fit_model(cand.facts, hw, fixed, runtime, margins, tier)
        if refit is not None:
            refit.context_capped_from = fit.settings.ctx_size
            return refit
    return fit


LOWBIT_TRADE_MIN_TPS = 10.0  # a better quant partly in RAM must still generate this fast...
LOWBIT_TRADE_SPEED_SHARE = 0.25  # ...and at least a quarter as fast as the low-bit one on the GPU


def _prefer_quality_over_lowbit(
    chosen: tuple[Candidate, Fit], evaluated: list[tuple[Candidate, Fit | None]]
) -> tuple[Candidate, Fit]:
    """Q2/Q3/IQ quants lose real quality: when a better quant runs partly from RAM (MoE experts or layers) at a
    still-fluent speed, prefer it over squeezing the low-bit file onto the GPU. Candidates are best-first."""
    cand, fit = chosen
    if quant_family(cand.quant) != "lowbit":
        return chosen
    floor = max(LOWBIT_TRADE_MIN_TPS, LOWBIT_TRADE_SPEED_SHARE * fit.speed.generation_tokens_per_s)
    eligible = []
    for other, other_fit in evaluated:
        if other is cand:
            break
        if (
            other_fit is not None
            and quant_family(other.quant) != "lowbit"
            and other_fit.speed.generation_tokens_per_s >= floor
            and other_fit.settings.ctx_size >= min(fit.settings.ctx_size, USEFUL_CTX)
        ):
            eligible.append((other, other_fit))
    if eligible:
        # the best quality that is not much slower than the fastest eligible file (quant steps above Q4 cost
        # little quality but, partly in RAM, a lot of speed)
        fastest = max(f.speed.generation_tokens_per_s for _, f in eligible)
        return next((c, f) for c, f in eligible if f.speed.generation_tokens_per_s >= 0.5 * fastest)
    return chosen
