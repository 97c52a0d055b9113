"""The solver: every configuration of every candidate file on the hardware, then the objective's choice.

Pure: it gets every candidate with its ModelFacts already read (planner/models/candidates.py reads them) and does
no I/O of its own; planner/core/planning.py turns its choice into a Plan.

The space: each file (quant) x full / partial -ngl (or --n-cpu-moe for an MoE) x KV type (f16, q8_0; q4_0 only
when asked) x the context ladder x --device none. Pruned with cheap bounds: files bigger than GPUs + RAM are never
read; a full offload is tried only when the layers alone fit the GPUs, and the largest context that fits it is
found by binary search (memory only grows with context); partial offload finds the most layers (or fewest experts
in RAM) that fit by binary search, bounded by the answer at the next smaller context; --device none only where
the GPUs cannot hold even llama.cpp's context. planner/core/objective.py chooses among what fits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
from planner.core.objective import (
    PROMPT_FILL_SECONDS,
    TARGET_CTX,
    USABLE_TOKENS_PER_S,
    USEFUL_CTX,
    Choice,
    Objective,
    Option,
    choose_option,
)
from planner.core.speed import estimate_speed
from planner.errors import BadInput
from planner.types.hardware import Gpu, Hardware
from planner.types.model import ModelFacts, ModelFile
from planner.types.plan import MemoryUse, Overrides, Quality, Runtime, Settings, Speed

CTX_LADDER = (32768, 16384, 8192, 4096, 2048, 1024, 512)
LONG_CTX_LADDER = (131072, 65536)  # tried only when --prefer context asks for the model's full context
DEFAULT_BATCH = 2048
DEFAULT_UBATCH = 512
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


class Fit:
    """One configuration's memory and where it runs; its speed is estimated on first use (the search rejects
    most configurations it tries on memory alone)."""

    def __init__(self, settings: Settings, memory: MemoryUse, where: str, estimate: Callable[[], Speed]) -> None:
        self.settings = settings
        self.memory = memory
        self.where = where
        self.full_offload = where == "GPU"
        self.context_capped_from: int | None = None
        self._estimate: Callable[[], Speed] | None = estimate
        self._speed: Speed | None = None

    @property
    def speed(self) -> Speed:
        if self._speed is None:
            assert self._estimate is not None
            self._speed, self._estimate = self._estimate(), None
        return self._speed

    @speed.setter
    def speed(self, value: Speed) -> None:
        self._speed, self._estimate = value, None


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


def _kv_options(ov: Overrides) -> list[tuple[str, str]]:
    """KV types to try: exactly what was given (-ctk alone changes only K), else f16 and q8_0 (q4_0 costs
    measurable quality and is tried only when asked)."""
    if ov.cache_type_k or ov.cache_type_v:
        k = ov.cache_type_k or "f16"
        v = ov.cache_type_v or "f16"
        if v not in ("f16", "f32", "bf16") and ov.flash_attn == "off":
            raise BadInput(f"a quantized V cache ({v}) needs flash attention: drop --flash-attn off or use -ctv f16")
        return [(k, v)]
    if ov.flash_attn == "off":
        return [("f16", "f16"), ("q8_0", "f16")]  # a quantized V cache needs flash attention
    return [("f16", "f16"), ("q8_0", "q8_0")]


def ctx_ladder(facts: ModelFacts, ov: Overrides) -> list[int]:
    """Contexts to try, largest first: --ctx alone, else the ladder up to the model's maximum (which is tried
    itself when it is below the ladder's top; with --prefer context, up to it)."""
    if ov.ctx_size:
        return [ov.ctx_size]
    top = facts.context_length or USEFUL_CTX
    ladder = [c for c in CTX_LADDER if c <= top]
    if ov.prefer == "context":
        ladder = [c for c in LONG_CTX_LADDER if c < top] + ladder
        if top > ladder[0]:
            ladder.insert(0, top)
    elif top < CTX_LADDER[0] and top not in ladder:
        ladder.insert(0, top)
    return ladder or [top]


def objective_for(facts: ModelFacts, ov: Overrides, min_speed: float | None = None) -> Objective:
    """The objective for this model and these knobs: the floor capped to the model's own maximum."""
    top = facts.context_length or USEFUL_CTX
    if ov.ctx_size:
        floor = target = ov.ctx_size
    else:
        floor = min(ov.min_ctx or USEFUL_CTX, top)  # --use-case reasoning arrives as min_ctx (planner.api)
        target = top if ov.prefer == "context" else max(TARGET_CTX, floor)
    speed = ov.min_speed if ov.min_speed is not None else min_speed if min_speed is not None else USABLE_TOKENS_PER_S
    return Objective(min_speed=speed, floor_ctx=floor, target_ctx=target, prefer=ov.prefer or "balanced")


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
    where = _where(facts, settings, hw.gpus)
    return Fit(
        settings, memory, where, lambda: estimate_speed(facts, settings, memory, hw.gpus, hw.cpu, backend=backend)
    )


def _min_bytes_on_gpu(facts: ModelFacts) -> int:
    """Lower bound of the GPU bytes of a full offload: every layer and the output, nothing else."""
    return sum(facts.layer_bytes) + facts.output_bytes


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


@dataclass
class Space:
    """One candidate's search: the hardware, the fixed knobs and how to evaluate a configuration."""

    facts: ModelFacts
    hw: Hardware
    ov: Overrides
    runtime: Runtime
    margins: list[int]
    evaluations: int = 0
    full_offload_only: bool = False  # a recommendation: no layers left in RAM (an MoE's experts may stay there)
    # the partial answers of the previous (larger) KV type per context: a smaller cache never holds fewer layers
    # (or needs more experts in RAM), so they bound the next KV type's binary search
    ngl_at: dict[int, int] = field(default_factory=dict)
    moe_at: dict[int, int] = field(default_factory=dict)

    def fits(self, fit: Fit) -> bool:
        unified = any(g.unified_memory for g in self.hw.gpus)
        return _fits(fit.memory, host_capacity(self.hw), unified)

    def attempt(
        self, ctx: int, kv: tuple[str, str], ngl: int, *, ubatch: int | None = None, n_cpu_moe: int | None = None,
        cpu_only: bool = False,
    ) -> Fit:  # fmt: skip
        hw = self.hw.model_copy(update={"gpus": []}) if cpu_only else self.hw
        settings = _settings(
            self.facts, hw, self.ov, ctx=ctx, kv=kv, ngl=ngl, ubatch=ubatch or self.ubatches[0], runtime=self.runtime,
            n_cpu_moe=n_cpu_moe,
        )  # fmt: skip
        self.evaluations += 1
        # the CPU alone runs CPU code whatever --backend says for the GPUs
        backend = None if cpu_only else self.ov.backend
        fit = _evaluate(self.facts, hw, settings, self.runtime, [] if cpu_only else self.margins, backend)
        if cpu_only and self.hw.gpus:
            fit.settings.gpu_off = True  # keep llama.cpp off GPUs too full to hold its own context
        return fit

    @property
    def ubatches(self) -> list[int]:
        return [self.ov.ubatch_size] if self.ov.ubatch_size else [DEFAULT_UBATCH, 256]

    @property
    def full(self) -> int:
        return self.facts.n_layer + 1


def _full_offload(space: Space, ctxs: list[int], kv: tuple[str, str]) -> list[Fit]:
    """Every context of `ctxs` (largest first) at which the whole model fits on the GPUs."""
    ov, facts = space.ov, space.facts
    if not space.hw.gpus or ov.n_cpu_moe or (ov.n_gpu_layers is not None and ov.n_gpu_layers < space.full):
        return []
    if _min_bytes_on_gpu(facts) > gpu_room(space.hw, space.margins):
        return []
    ngl = ov.n_gpu_layers if ov.n_gpu_layers is not None else space.full

    def at(i: int) -> Fit:
        fit = space.attempt(ctxs[i], kv, ngl)
        for ub in space.ubatches[1:]:  # a smaller ubatch shrinks the compute buffer: try it before less context
            if space.fits(fit):
                break
            fit = space.attempt(ctxs[i], kv, ngl, ubatch=ub)
        return fit

    first = _first_that_fits(list(range(len(ctxs))), at, space.fits)
    if first is None:
        return []
    return [first, *_readable_context(space, ctxs, first, at)]


def _prompt_speed(fit: Fit) -> float:
    """Prompt tokens/s; unknown (no FLOP figure for the GPU) caps no context: nothing says it is slow to fill."""
    pp = fit.speed.prompt_tokens_per_s
    return float("inf") if pp is None else pp


def _readable_context(space: Space, ctxs: list[int], first: Fit, at: Callable[[int], Fit]) -> list[Fit]:
    """Whole on the GPUs (or in RAM), a smaller context generates no faster (the speed model reads the first
    512 cells of the cache), so the largest context that fits is the only one worth having; and the largest the
    machine can read in PROMPT_FILL_SECONDS, when that is smaller (the objective does not count more)."""
    readable = _prompt_speed(first) * PROMPT_FILL_SECONDS
    if first.settings.ctx_size <= readable:
        return []
    smaller = [i for i, c in enumerate(ctxs) if c < first.settings.ctx_size and c <= readable]
    if not smaller:
        return []
    fit = at(smaller[0])
    return [fit] if space.fits(fit) else []


def _most_on_gpus(space: Space, values: list[int], evaluate: Callable[[int], Fit]) -> Fit | None:
    """The first of `values` (most on the GPUs first) whose GPUs hold it, if RAM then holds the rest. Fitting is
    not monotone in layers (fewer on the GPUs means more in RAM), but GPU use is: the most the GPUs hold also
    leaves the least for RAM, so if that does not fit in RAM, nothing at this context does."""

    def gpus_hold(fit: Fit) -> bool:
        return all(d.total_bytes <= d.capacity_bytes for d in fit.memory.devices)

    fit = _first_that_fits(values, evaluate, gpus_hold)
    return fit if fit is not None and space.fits(fit) else None


def _partial(space: Space, ctxs: list[int], kv: tuple[str, str]) -> list[Fit]:
    """For each context (largest first), the most of the model that fits on the GPUs: fewest MoE experts in RAM,
    else most layers; --device none where the GPUs cannot take even llama.cpp's own buffers."""
    ov, facts = space.ov, space.facts
    out: list[Fit] = []
    hi_ngl = space.full if ov.n_gpu_layers is None else ov.n_gpu_layers
    lo_moe = 1
    for ctx in reversed(ctxs):  # smallest first: a larger context never fits more layers
        fit = None
        if ov.n_cpu_moe is not None:
            ngl = space.full if ov.n_gpu_layers is None else ov.n_gpu_layers
            fit = space.attempt(ctx, kv, ngl, n_cpu_moe=ov.n_cpu_moe)
            fit = fit if space.fits(fit) else None
        elif ov.n_gpu_layers is not None:
            fit = space.attempt(ctx, kv, ov.n_gpu_layers)
            fit = fit if space.fits(fit) else None
        else:
            if facts.is_moe:
                moe = list(range(lo_moe, min(space.moe_at.get(ctx, facts.n_layer), facts.n_layer) + 1))

                def with_moe(n: int, ctx: int = ctx) -> Fit:
                    return space.attempt(ctx, kv, space.full, n_cpu_moe=n)

                fit = _most_on_gpus(space, moe, with_moe) if moe else None
                if fit is not None:
                    lo_moe = space.moe_at[ctx] = fit.settings.n_cpu_moe
            layers_in_ram = fit is None and not space.full_offload_only
            for ub in space.ubatches if layers_in_ram else []:  # a smaller ubatch only when the default fits nowhere

                def with_ngl(n: int, ctx: int = ctx, ub: int = ub) -> Fit:
                    return space.attempt(ctx, kv, n, ubatch=ub)

                values = list(range(min(hi_ngl, space.full - 1), space.ngl_at.get(ctx, 0) - 1, -1))
                fit = _most_on_gpus(space, values, with_ngl)
                if fit is not None:
                    hi_ngl = space.ngl_at[ctx] = fit.settings.n_gpu_layers
                    break
        if fit is None and ov.n_gpu_layers in (None, 0) and ov.n_cpu_moe is None and not space.full_offload_only:
            cpu = space.attempt(ctx, kv, 0, cpu_only=True)
            fit = cpu if space.fits(cpu) else None
        if fit is None:
            break  # every placement needs more memory at a larger context: none of those fits either
        out.append(fit)
    return out


def _cpu(space: Space, ctxs: list[int], kv: tuple[str, str]) -> list[Fit]:
    """No GPU: every context at which the model fits in RAM (binary search for the largest)."""

    def at(i: int) -> Fit:
        return space.attempt(ctxs[i], kv, 0)

    first = _first_that_fits(list(range(len(ctxs))), at, space.fits)
    if first is None:
        return []
    return [first, *_readable_context(space, ctxs, first, at)]


def candidate_fits(space: Space, ctxs: list[int]) -> Iterator[Fit]:
    """Every configuration of one file worth comparing: a full offload where it fits, else the best partial."""
    for kv in _kv_options(space.ov):
        if not space.hw.gpus:
            yield from _cpu(space, ctxs, kv)
            continue
        full = _full_offload(space, ctxs, kv)
        yield from full
        # a context where the whole model fits needs no partial plan: fewer layers there is only slower
        rest = [c for c in ctxs if not full or c > full[0].settings.ctx_size]
        if rest and (space.facts.is_moe or not space.full_offload_only):
            yield from _partial(space, rest, kv)


@dataclass
class SearchResult:
    objective: Objective
    options: list[Option]  # every configuration that fits, of every candidate
    choice: Choice | None
    per_candidate: list[tuple[Candidate, Option | None]]  # each file's own best option (None: nothing fits)
    evaluations: int = 0
    full_offload_only: bool = False  # only plans entirely on the GPUs (an MoE's experts may stay in RAM) counted


def _option(i: int, cand: Candidate, fit: Fit) -> Option:
    s = fit.settings
    return Option(
        rank=i, quant=cand.quant, kv=(s.cache_type_k, s.cache_type_v), speed=fit.speed.generation_tokens_per_s or 0.0,
        prompt_speed=_prompt_speed(fit), ctx=s.ctx_size, where=fit.where, n_gpu_layers=s.n_gpu_layers,
        n_layers=cand.facts.n_layer + 1, n_cpu_moe=s.n_cpu_moe, payload=(cand, fit),
    )  # fmt: skip


def search(
    candidates: list[Candidate],
    hw: Hardware,
    ov: Overrides,
    runtime: Runtime,
    margin_bytes: int | None,
    *,
    min_speed: float | None = None,
    full_offload_only: bool = False,
) -> SearchResult:
    """Every fitting configuration of every candidate (best quality first), and the objective's choice."""
    if ov.n_cpu_moe and any(c.loaded_facts is not None and not c.loaded_facts.is_moe for c in candidates):
        raise BadInput(f"--n-cpu-moe {ov.n_cpu_moe}: {candidates[0].model} is a dense model and has no experts")
    margins = margins_for(hw, margin_bytes)
    reach = reachable_bytes(hw, margins)
    reachable = [(i, c) for i, c in enumerate(candidates) if c.size_bytes <= reach]
    known = next((c.loaded_facts for c in candidates if c.loaded_facts is not None), None)
    objective = objective_for(known, ov, min_speed) if known is not None else Objective()
    evaluations = 0

    def enumerate_at(ctxs_of: Callable[[ModelFacts], list[int]]) -> list[Option]:
        nonlocal evaluations
        found = []
        for i, cand in reachable:
            space = Space(cand.facts, hw, ov, runtime, margins, full_offload_only=full_offload_only and bool(hw.gpus))
            ctxs = ctxs_of(cand.facts)
            if ctxs:
                found += [_option(i, cand, fit) for fit in candidate_fits(space, ctxs)]
            evaluations += space.evaluations
        if full_offload_only and hw.gpus:
            found = [o for o in found if o.where == "GPU" or o.n_cpu_moe]
        return found

    options = enumerate_at(lambda f: [c for c in ctx_ladder(f, ov) if c >= objective.floor_ctx])
    if not options and not ov.ctx_size:
        # nothing at the floor: what fits below it, so the plan can say what it would take
        options = enumerate_at(lambda f: [c for c in ctx_ladder(f, ov) if c < objective.floor_ctx])
    choice = choose_option(options, objective)
    per_candidate = []
    for i, cand in enumerate(candidates):
        own = [o for o in options if o.rank == i]
        best = choose_option(own, objective)
        per_candidate.append((cand, best.chosen if best else None))
    return SearchResult(objective, options, choice, per_candidate, evaluations, full_offload_only and bool(hw.gpus))


def closest_attempt(facts: ModelFacts, hw: Hardware, ov: Overrides, runtime: Runtime, margins: list[int]) -> Fit:
    """The smallest sensible setting, with the GPUs holding as many layers as they can: what it would need is
    what the nothing-fits answer reports."""
    space = Space(facts, hw, ov, runtime, margins)
    ctx = ov.ctx_size or min(512, facts.context_length or 512)
    kv = _kv_options(ov)[-1]
    if ov.n_gpu_layers is not None or not hw.gpus:
        return space.attempt(ctx, kv, ov.n_gpu_layers or 0, ubatch=ov.ubatch_size or 256)

    def gpus_hold(fit: Fit) -> bool:
        return all(d.total_bytes <= d.capacity_bytes for d in fit.memory.devices)

    def at(n: int) -> Fit:
        return space.attempt(ctx, kv, n, ubatch=ov.ubatch_size or 256)

    best = _first_that_fits(list(range(space.full, -1, -1)), at, gpus_hold)
    return best if best is not None else at(0)


def payload_of(option: Option) -> tuple[Candidate, Fit]:
    payload = option.payload
    assert isinstance(payload, tuple)
    cand: Candidate = payload[0]
    fit: Fit = payload[1]
    return cand, fit
