"""The solver: candidates (model files) x hardware -> the best Plan, with alternatives, under a stated margin.

Pure: it gets ModelFacts through loaders handed to it and does no I/O of its own (see planner/candidates.py for
where candidates come from). Order of preference, as a demanding user would choose by hand:

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

from planner.errors import BadInput, NothingFits
from planner.estimate.memory import (
    CUDA_FA_PAIRS,
    MiB,
    estimate_memory,
    kv_bytes_per_token,
)
from planner.estimate.speed import disk_seconds_per_token, estimate_speed
from planner.hardware.profile import Gpu, Hardware
from planner.models.facts import ModelFacts
from planner.plan import (
    Alternative,
    MemoryUse,
    Overrides,
    Plan,
    PlanRequest,
    Quality,
    Runtime,
    Settings,
    Speed,
)

CTX_LADDER = (32768, 16384, 8192, 4096, 2048, 1024, 512)
USEFUL_CTX = 4096
DEFAULT_BATCH = 2048
DEFAULT_UBATCH = 512
USABLE_TOKENS_PER_S = 5.0  # below this a chat feels broken: prefer a smaller quant that is faster
LLAMA_CPP_BUILD = "b10454"  # the llama.cpp behaviour modelled (llama-cpp-python 0.3.35+ vendors >= b10454)
HOST_OS_RESERVE = 1024 * MiB  # what the OS and other programs keep when RAM is given as a what-if total


def default_margin(gpu: Gpu) -> int:
    """Safety margin kept free per GPU: 3 % of VRAM, at least 256 MiB (fragmentation, driver spikes) and at most
    1 GiB (llama.cpp's own --fit margin; more would leave a big card idle)."""
    return min(1024 * MiB, max(256 * MiB, int(gpu.memory_total_bytes * 0.03)))


@dataclass
class Candidate:
    """One model file that could be run: known by size first; its header is read only when needed."""

    model: str  # display name, e.g. "Qwen1.5-14B-Chat"
    quant: str
    size_bytes: int
    load_facts: Callable[[], ModelFacts]
    quality: Quality | None = None
    file: str | None = None
    _facts: ModelFacts | None = field(default=None, repr=False)

    def facts(self) -> ModelFacts:
        if self._facts is None:
            self._facts = self.load_facts()
        return self._facts


@dataclass
class Fit:
    settings: Settings
    memory: MemoryUse
    speed: Speed
    full_offload: bool
    where: str
    context_capped_from: int | None = None  # the larger context that would fit, when prompt speed capped it


def metal_working_set_share(total_bytes: int) -> float:
    """Share of unified memory macOS lets Metal wire by default (recommendedMaxWorkingSetSize), interpolated in
    log2(size) between the two published measurements: 10.67 GB of 16 GB (0.667) and 107.52 GiB of 128 GiB (0.84)."""
    from math import log2

    gib = total_bytes / 1024**3
    if gib <= 16:
        return 0.667
    if gib >= 128:
        return 0.84
    return 0.667 + (0.84 - 0.667) * (log2(gib) - 4) / 3


def gpu_capacity(gpu: Gpu) -> int:
    """What a GPU can hold for llama.cpp: free memory, or the Metal working set of Apple unified memory."""
    if gpu.unified_memory and gpu.vendor == "apple":
        return int(gpu.memory_total_bytes * metal_working_set_share(gpu.memory_total_bytes))
    return gpu.usable_bytes


def host_capacity(hw: Hardware) -> int:
    if hw.source == "probe":
        return hw.memory.available_bytes
    return max(0, hw.memory.total_bytes - HOST_OS_RESERVE)


def _fits(memory: MemoryUse, host_cap: int, unified: bool = False) -> bool:
    if any(d.total_bytes > d.capacity_bytes for d in memory.devices):
        return False
    if unified:  # the GPU's share and the host's share come out of the same RAM
        return memory.host.total_bytes + sum(d.total_bytes for d in memory.devices) <= host_cap
    # mmap'd host weights are page cache: they must fit too, or every token re-reads them from disk
    return memory.host.total_bytes <= host_cap


def _fa_choice(facts: ModelFacts, gpus: list[Gpu], k: str, v: str, override: str | None) -> str:
    if override in ("on", "off"):
        return override
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
    return ov.threads or max(1, hw.cpu.physical_cores)


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
        flash_attn=fa,  # type: ignore[arg-type]
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


def _evaluate(facts: ModelFacts, hw: Hardware, settings: Settings, runtime: Runtime, margins: list[int]) -> Fit:
    memory = estimate_memory(facts, settings, hw.gpus, runtime, margin_bytes=0)
    for dev, gpu, margin in zip(memory.devices, hw.gpus, margins):
        dev.capacity_bytes = max(0, gpu_capacity(gpu) - margin)
    memory.margin_bytes = max(margins, default=0)
    memory.host.capacity_bytes = host_capacity(hw)
    speed = estimate_speed(facts, settings, memory, hw.gpus, hw.cpu)
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
    total_gpu = sum(max(0, gpu_capacity(g) - m) for g, m in zip(hw.gpus, margins))
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
        return _evaluate(
            facts, hw, _settings(facts, hw, ov, ctx=ctx, kv=kv, ngl=ngl, ubatch=ub, runtime=runtime), runtime, margins
        )

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
                    return _evaluate(facts, hw, settings, runtime, margins)

                best = _first_that_fits(list(range(1, facts.n_layer + 1)), with_cpu_moe, fits)
                if best is not None:
                    return best

    # partial offload: the most layers that fit
    ngl_options = [fixed_ngl] if fixed_ngl is not None else list(range(full, -1, -1))
    for ctx in ctxs:
        for kv in kvs:
            best = _first_that_fits(ngl_options, lambda ngl, ctx=ctx, kv=kv: attempt(ctx, kv, ngl, ubatches[0]), fits)
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
    return _evaluate(facts, hw, settings, runtime, margins)


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
    margins = [margin_bytes if margin_bytes is not None else default_margin(g) for g in hw.gpus]
    best_fit: dict[int, Fit | None] = {}
    chosen: tuple[Candidate, Fit] | None = None
    tiers = (
        TIERS
        if hw.gpus
        else (Tier("cpu", False, USEFUL_CTX), Tier("cpu-short", False, 2048, True), Tier("cpu-any", False, 512, True))
    )
    if full_offload_only and hw.gpus:
        tiers = tuple(t for t in tiers if t.full_offload)
    host_cap = host_capacity(hw)
    gpu_cap = sum(max(0, gpu_capacity(g) - m) for g, m in zip(hw.gpus, margins))
    for tier in tiers:
        for i, cand in enumerate(candidates):
            if i in best_fit and best_fit[i] is not None and best_fit[i].full_offload and not tier.full_offload:
                continue
            if cand.size_bytes > gpu_cap + host_cap:
                best_fit.setdefault(i, None)
                continue  # cannot fit anywhere: don't even read its header
            fit = fit_model(cand.facts(), hw, ov, runtime, margins, tier)
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
        if best_fit.get(i) is None and cand.size_bytes <= gpu_cap + host_cap:
            for tier in tiers:
                fit = fit_model(cand.facts(), hw, ov, runtime, margins, tier)
                if fit is not None:
                    best_fit[i] = fit
                    break
    evaluated = [(cand, best_fit.get(i)) for i, cand in enumerate(candidates)]
    if chosen is None and hw.gpus and ov.n_gpu_layers in (None, 0):
        # the GPUs cannot hold even the CUDA context and a compute buffer beside what they already carry: run on
        # the CPU alone, with llama.cpp kept off the GPUs
        cpu_only = hw.model_copy(update={"gpus": []})
        cand, fit, _ = choose(candidates, cpu_only, ov, runtime, margin_bytes, min_speed=min_speed)
        if cand is not None and fit is not None:
            fit.settings.gpu_off = True
            return cand, fit, evaluated
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
        refit = fit_model(cand.facts(), hw, fixed, runtime, margins, tier)
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
    from planner.estimate.speed import quant_family

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


def alternative_of(cand: Candidate, fit: Fit | None) -> Alternative:
    return Alternative(
        model=cand.model,
        quant=cand.quant,
        file=cand.file,
        size_bytes=cand.size_bytes,
        fits=fit is not None,
        where=fit.where if fit else "does not fit",
        n_gpu_layers=fit.settings.n_gpu_layers if fit else 0,
        ctx_size=fit.settings.ctx_size if fit else 0,
        generation_tokens_per_s=fit.speed.generation_tokens_per_s if fit else None,
        quality=cand.quality,
    )


def disk_bound_speed(facts: ModelFacts, hw: Hardware) -> float:
    return disk_seconds_per_token(facts, host_capacity(hw), hw.disk.read_bandwidth_gbs)


def plan_from(
    cand: Candidate,
    fit: Fit,
    hw: Hardware,
    runtime: Runtime,
    command: list[str],
    reasons: list[str],
    warnings: list[str],
    alternatives: list[Alternative],
) -> Plan:
    facts = cand.facts()
    return Plan(
        model=facts.summary(),
        hardware=hw,
        runtime=runtime,
        fits=True,
        where=fit.where,
        settings=fit.settings,
        memory=fit.memory,
        speed=fit.speed,
        quality=cand.quality,
        command=command,
        alternatives=alternatives,
        reasons=reasons,
        warnings=warnings,
        llama_cpp_build=LLAMA_CPP_BUILD,
    )


# ---------------------------------------------------------------------------------------------------------------
# The entry point: wires the I/O edge (planner.candidates) to the pure core above; the words of a plan are in
# planner.explain, the choice of a model when none is named in planner.recommend.
# ---------------------------------------------------------------------------------------------------------------
def plan_model(request: PlanRequest) -> Plan:
    """Plan one model (or recommend one when request.model is None) for request.hardware."""
    from planner import candidates as cands_mod
    from planner.explain import reasons_for
    from planner.recommend import recommend

    hw = request.hardware
    ov = request.overrides
    ccs = [cc for g in hw.gpus if (cc := g.cc_tuple())]
    warnings = list(hw.warnings)
    if request.model is None:
        ranked = recommend(hw, ov, request.runtime, request.margin_bytes, ccs)
        if not ranked:
            raise NothingFits("no catalog model runs usably on this hardware, not even the smallest")
        _, cand, fit, evaluated, why = ranked[0]
        alternatives = [alternative_of(c, f) for _, c, f, _, _ in ranked[1:10]]
        reasons = [why, *reasons_for(cand, fit, evaluated, hw)[1:]]
        return _finish(cand, fit, hw, request, reasons, warnings, alternatives)

    candidates, more_warnings = cands_mod.candidates_for(
        request.model, quant=ov.quant, offline=request.offline, ccs=ccs
    )
    warnings += more_warnings
    if not candidates:
        raise BadInput(f"{request.model}: no GGUF model file to plan with")
    chosen, fit, evaluated = choose(candidates, hw, ov, request.runtime, request.margin_bytes)
    alternatives = [alternative_of(c, f) for c, f in evaluated if c is not chosen]
    if chosen is None or fit is None:
        return _nothing_fits(candidates, hw, request, warnings, alternatives)
    return _finish(chosen, fit, hw, request, reasons_for(chosen, fit, evaluated, hw), warnings, alternatives)


def _command(cand: Candidate, fit: Fit, runtime: Runtime) -> list[str]:
    from planner.deploy.server_args import llama_cpp_python_args, llama_server_args

    path = cand.file or cand.facts().file or "model.gguf"
    alias = cand.model
    if runtime == "llama-cpp-python":
        args, _ignored = llama_cpp_python_args(fit.settings, model_path=path, alias=alias, host="127.0.0.1", port=8080)
        return ["python", "-m", "llama_cpp.server", *args]
    return [
        "llama-server",
        *llama_server_args(fit.settings, model_path=path, alias=alias, host="127.0.0.1", port=8080),
    ]


def _finish(cand, fit, hw, request, reasons, warnings, alternatives) -> Plan:  # noqa: ANN001
    facts = cand.facts()
    ov = request.overrides
    if ov.n_cpu_moe and not facts.is_moe:
        warnings.append(f"--n-cpu-moe {ov.n_cpu_moe} has no effect: {cand.model} has no experts")
    if ov.n_gpu_layers is not None and ov.n_gpu_layers > facts.n_layer + 1:
        warnings.append(f"--ngl {ov.n_gpu_layers}: the model has {facts.n_layer + 1} units, all of them offloaded")
    if facts.origin == "catalog":
        warnings.append(
            "model facts come from the offline catalog (no hub access): sizes and layout are from the catalog "
            "entry's basis; run with network access for the file's real header"
        )
    for gpu in hw.gpus:
        if gpu.fp16_crippled and cand.quant.upper() in ("F16", "BF16"):
            warnings.append(f"{gpu.name}: FP16 runs at a tiny fraction of FP32 on this chip; prefer a quantized file")
    return plan_from(
        cand, fit, hw, request.runtime, _command(cand, fit, request.runtime), reasons, warnings, alternatives
    )


def _nothing_fits(
    candidates: list[Candidate],
    hw: Hardware,
    request: PlanRequest,
    warnings: list[str],
    alternatives: list[Alternative],
) -> Plan:
    smallest = min(candidates, key=lambda c: c.size_bytes)
    facts = smallest.facts()
    margins = [request.margin_bytes if request.margin_bytes is not None else default_margin(g) for g in hw.gpus]
    closest = closest_attempt(facts, hw, request.overrides, request.runtime, margins)
    spt = disk_bound_speed(facts, hw)
    closest.speed.disk_bound_seconds_per_token = round(spt, 2)
    kv_alone = kv_bytes_per_token(facts, closest.settings.cache_type_k, closest.settings.cache_type_v)
    kv_alone *= closest.settings.ctx_size
    if request.overrides.ctx_size and kv_alone > host_capacity(hw) + sum(g.usable_bytes for g in hw.gpus):
        raise NothingFits(
            f"--ctx {request.overrides.ctx_size} needs {kv_alone / 1e9:.1f} GB of KV cache alone "
            f"({kv_bytes_per_token(facts) // 1024} KiB per token in f16); try a smaller --ctx"
        )
    alternatives = [a for a in alternatives if a.fits]
    reasons = [
        f"nothing fits: even {smallest.model} {smallest.quant} ({smallest.size_bytes / 1e9:.1f} GB) needs more than "
        f"the {sum(g.usable_bytes for g in hw.gpus) / 1e9:.1f} GB of GPU memory plus "
        f"{host_capacity(hw) / 1e9:.1f} GB of RAM available",
        f"streamed from disk through mmap it would take about {spt:.1f} s per token",
    ]
    command = _command(smallest, closest, request.runtime)
    plan = plan_from(smallest, closest, hw, request.runtime, command, reasons, warnings, alternatives)
    plan.fits = False
    plan.where = "disk"
    return plan
