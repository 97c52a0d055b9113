"""Upgrade advice (`plan --upgrade`): when a plan does not fit, or runs under the usable speed or the context floor,
the smallest changes that fix it, each re-planned by the real planner.

Pure: the caller (planner.api) passes the tables (the GPU database rows it may offer, with the user's prices if any;
the model's other quant files; the smaller catalog models of its line) and `replan`, which plans a changed request
exactly as `planner plan` with the change's options would. Nothing here predicts a speed: every figure on an
Upgrade is its re-plan's. The only arithmetic of its own is a bound that rules out cards before re-planning them:
a card too small or too slow even if every weight were read at 95 % of its bandwidth (the highest efficiency the
speed model uses) and the rest from RAM at the speed model's CPU efficiency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from planner.core.capacity import host_capacity, margins_for
from planner.core.objective import REASONING_CTX, USABLE_TOKENS_PER_S, USEFUL_CTX
from planner.core.search import CTX_LADDER
from planner.core.speed import DEFAULT_CONSTANTS, host_bandwidth
from planner.types.hardware import Gpu, Hardware
from planner.types.plan import Plan, PlanRequest, Upgrade, UpgradeKind

# Installed RAM comes in these totals (decimal GB, as `--ram 48GB` reads): DIMM kits of 8/16/24/32/48 GB modules
# in 1, 2, 4 or 8 slots. "More RAM" is the next of them above what the machine has.
STANDARD_RAM_GB = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
RAM_TOLERANCE = 0.08  # a machine reporting within 8 % of a standard total has that total (the kernel keeps some)
RAM_STEPS = 6  # RAM sizes re-planned at most, stopping early when a size changes nothing
GPU_REPLANS = 10  # database cards re-planned at most (after the bound)
GPU_FIXES = 3  # cards shown that fix it: the cheapest (or smallest) first
QUANT_REPLANS = 16
MODEL_REPLANS = 4
CTX_STEPS = 3
MIN_CTX = 1024  # below this a chat is not worth offering
GPU_ETA_BOUND = 0.95  # SpeedConstants.eta caps every GPU's efficiency here
WEIGHTS_READ_SHARE = 0.85  # at least this share of a file is read per token (all but the token-embedding rows)

Replan = Callable[[PlanRequest], "Plan | str"]  # the re-plan, or one line saying why it could not be planned


Try = tuple[PlanRequest, str, UpgradeKind, list[str]]  # the changed request, the change in words, its kind, options


@dataclass(frozen=True)
class GpuOffer:
    """A card from the GPU database that the advice may suggest, with the user's price for it (None: not given)."""

    gpu: Gpu
    price: float | None = None


@dataclass(frozen=True)
class QuantFile:
    quant: str
    size_bytes: int


@dataclass(frozen=True)
class SmallerModel:
    """A smaller catalog model of the same line (Llama 3.x, Qwen2.x ...), with the quants it comes in."""

    name: str
    n_params: int
    quants: tuple[str, ...]


@dataclass(frozen=True)
class Floors:
    speed: float
    ctx: int


def floors_for(plan: Plan, request: PlanRequest) -> Floors:
    """The usable speed and the context floor the objective used for `request` (planner.core.search.objective_for)."""
    ov = request.overrides
    speed = ov.min_speed if ov.min_speed is not None else USABLE_TOKENS_PER_S
    if ov.ctx_size:
        return Floors(speed, ov.ctx_size)
    floor = ov.min_ctx or (REASONING_CTX if request.use_case == "reasoning" else USEFUL_CTX)
    return Floors(speed, min(floor, plan.model.context_length or USEFUL_CTX))


def shortfall(plan: Plan, floors: Floors) -> str | None:
    """What keeps the plan from being usable, in words; None when it is."""
    if not plan.fits:
        return "does not fit"
    speed = plan.speed.generation_tokens_per_s
    if speed is None or speed < floors.speed:
        return f"runs at {speed or 0:g} tokens/s, under the usable {floors.speed:g}"
    if plan.settings.ctx_size < floors.ctx:
        return f"fits only at context {plan.settings.ctx_size}, under the {floors.ctx}-token floor"
    return None


@dataclass
class Advice:
    upgrades: list[Upgrade]
    notes: list[str]


@dataclass
class _Context:
    plan: Plan
    request: PlanRequest
    replan: Replan
    replans: int = 0

    def attempt(
        self, request: PlanRequest, change: str, kind: UpgradeKind, options: list[str], price: float | None = None
    ) -> Upgrade:
        """Re-plan `request` and describe the result as an Upgrade."""
        self.replans += 1
        result = self.replan(request)
        if isinstance(result, str):
            return Upgrade(change=change, kind=kind, options=options, fits=False, fixes=False, price=price, why=result)
        floors = floors_for(result, request)
        short = shortfall(result, floors)
        speed = result.speed.generation_tokens_per_s
        if short is None:
            why = f"fits ({result.where}) at {speed:g} tokens/s with context {result.settings.ctx_size}"
        elif result.fits:
            why = f"still {short}"
        else:
            why = "still does not fit"
        return Upgrade(
            change=change,
            kind=kind,
            options=options,
            fits=result.fits,
            fixes=short is None,
            where=result.where,
            model=result.model.name,
            quant=result.model.quant,
            n_gpu_layers=result.settings.n_gpu_layers if result.fits else 0,
            ctx_size=result.settings.ctx_size if result.fits else 0,
            generation_tokens_per_s=speed if result.fits else None,
            prompt_tokens_per_s=result.speed.prompt_tokens_per_s if result.fits else None,
            price=price,
            why=why,
        )

    def first_fix(self, tries: list[Try], limit: int) -> list[Upgrade]:
        """Re-plan `tries` in order (the smallest change first) until one fixes it: that one, else the last tried."""
        last = None
        for request, change, kind, options in tries[:limit]:
            last = self.attempt(request, change, kind, options)
            if last.fixes:
                return [last]
        return [last] if last else []


def advise(
    plan: Plan,
    request: PlanRequest,
    replan: Replan,
    *,
    offers: Sequence[GpuOffer] = (),
    prices_given: bool = False,
    quants: Sequence[QuantFile] = (),
    smaller_models: Sequence[SmallerModel] = (),
) -> Advice:
    """The changes that make `plan` usable, each with its re-plan; fixing ones first, free changes before bought
    ones. `quants` are the model's files when the user fixed the quant (otherwise the plan compared them all
    already); `offers` the cards that may replace the machine's, priced when `prices_given`."""
    floors = floors_for(plan, request)
    problem = shortfall(plan, floors)
    if problem is None:
        note = (
            f"nothing to change: the plan fits and reaches the usable {floors.speed:g} tokens/s at context "
            f"{floors.ctx} or more"
        )
        return Advice([], [note])
    ctx = _Context(plan, request, replan)
    notes = [
        f"the plan {problem}; each change was re-planned by planner with everything else as given "
        "(its figures are that plan's)"
    ]
    rows: list[Upgrade] = []
    rows += _less_context(ctx, floors)
    rows += _fewer_slots(ctx)
    rows += _smaller_quant(ctx, quants)
    rows += _smaller_model(ctx, smaller_models)
    hw = request.hardware
    if any(g.unified_memory for g in hw.gpus):
        notes.append(
            "unified memory (the GPU shares the RAM): more RAM or another GPU means another machine, not an "
            "upgrade; planner does not suggest one"
        )
    else:
        rows += _more_ram(ctx)
        rows += _second_gpu(ctx, offers)
        rows += _other_gpus(ctx, floors, offers, prices_given, notes)
    rows.sort(key=lambda u: not u.fixes)  # stable: within each group the order above
    if not any(u.fixes for u in rows):
        notes.append("none of the changes tried fixes it on its own")
    notes[0] += f"; {ctx.replans} re-plans"
    return Advice(rows, notes)


# ---- free changes: less context, fewer slots, a smaller file ------------------------------------------------------


def _with_overrides(request: PlanRequest, **update: object) -> PlanRequest:
    return request.model_copy(update={"overrides": request.overrides.model_copy(update=update)})


def _less_context(ctx: _Context, floors: Floors) -> list[Upgrade]:
    ov = ctx.request.overrides
    smaller = [c for c in CTX_LADDER if MIN_CTX <= c < floors.ctx]
    tries: list[Try]
    if ov.ctx_size:
        tries = [
            (_with_overrides(ctx.request, ctx_size=c), f"context {ov.ctx_size} -> {c}", "context", ["--ctx", str(c)])
            for c in smaller
        ]
    else:
        tries = [
            (
                _with_overrides(ctx.request, min_ctx=c),
                f"context floor {floors.ctx} -> {c}",
                "context",
                ["--min-ctx", str(c)],
            )
            for c in smaller
        ]
    return ctx.first_fix(tries, CTX_STEPS)


def _fewer_slots(ctx: _Context) -> list[Upgrade]:
    slots = ctx.request.overrides.parallel
    if not slots or slots < 2:
        return []
    fewer = []
    n = slots // 2
    while n >= 1:
        fewer.append(n)
        n //= 2
    tries: list[Try] = [
        (_with_overrides(ctx.request, parallel=n), f"{slots} -> {n} parallel slots", "parallel", ["--parallel", str(n)])
        for n in fewer
    ]
    return ctx.first_fix(tries, len(tries))


def _smaller_quant(ctx: _Context, quants: Sequence[QuantFile]) -> list[Upgrade]:
    current = ctx.plan.model
    smaller = sorted((q for q in quants if q.size_bytes < current.size_bytes), key=lambda q: -q.size_bytes)
    tries: list[Try] = [
        (
            _with_overrides(ctx.request, quant=q.quant),
            f"{current.quant} -> {q.quant} ({q.size_bytes / 1e9:.1f} GB)",
            "quant",
            ["--quant", q.quant],
        )
        for q in smaller
    ]
    return ctx.first_fix(tries, QUANT_REPLANS)


def _smaller_model(ctx: _Context, models: Sequence[SmallerModel]) -> list[Upgrade]:
    current = ctx.plan.model
    quant = ctx.request.overrides.quant
    tries: list[Try] = []
    for model in sorted(models, key=lambda m: -m.n_params):
        if model.n_params >= current.n_params:
            continue
        keep = quant if quant and quant.upper() in (q.upper() for q in model.quants) else None
        request = _with_overrides(ctx.request.model_copy(update={"model": model.name}), quant=keep)
        options = [model.name] + (["--quant", keep] if keep else [])
        tries.append((request, f"smaller model: {model.name} ({model.n_params / 1e9:.1f}B)", "model", options))
    # another model is only worth showing when it fixes it: the first (largest) that does, or nothing
    found = ctx.first_fix(tries, MODEL_REPLANS)
    return [u for u in found if u.fixes]


# ---- hardware: more RAM, a second card, another card --------------------------------------------------------------


def ram_sizes_above(total_bytes: int) -> list[int]:
    """The standard RAM totals (GB) above the machine's: a machine within RAM_TOLERANCE of a standard total has
    that total installed, so 32 GB reported as 31.3 GiB goes to 48 next, not to 32."""
    installed = next((s for s in STANDARD_RAM_GB if abs(total_bytes - s * 1e9) <= RAM_TOLERANCE * s * 1e9), None)
    base = installed if installed is not None else total_bytes / 1e9
    return [s for s in STANDARD_RAM_GB if s > base]


def with_ram(hw: Hardware, gb: int) -> Hardware:
    """The machine with `gb` GB of RAM in all; a probed machine keeps what other programs use now."""
    total = int(gb * 1e9)
    added = max(0, total - hw.memory.total_bytes)
    available = hw.memory.available_bytes + added if hw.source == "probe" else total
    memory = hw.memory.model_copy(update={"total_bytes": total, "available_bytes": available})
    return hw.model_copy(update={"memory": memory})


def _more_ram(ctx: _Context) -> list[Upgrade]:
    """The smallest standard RAM total above the machine's that fixes it (sizes too small for the file with the
    GPUs full are skipped unplanned), else the next size's re-plan; more stops when a size changes nothing."""
    hw = ctx.request.hardware
    plan = ctx.plan
    gpu_room = sum(max(0, g.usable_bytes - m) for g, m in zip(hw.gpus, margins_for(hw, ctx.request.margin_bytes)))
    sizes = ram_sizes_above(hw.memory.total_bytes)
    could_fit = [gb for gb in sizes if host_capacity(with_ram(hw, gb)) + gpu_room >= plan.model.size_bytes]
    first: Upgrade | None = None
    previous = (plan.fits, plan.speed.generation_tokens_per_s if plan.fits else None, plan.settings.ctx_size)
    for gb in could_fit[:RAM_STEPS]:
        request = ctx.request.model_copy(update={"hardware": with_ram(hw, gb)})
        change = f"RAM {hw.memory.total_bytes / 1e9:.0f} GB -> {gb} GB"
        row = ctx.attempt(request, change, "ram", ["--ram", f"{gb}GB"])
        if row.fixes:
            return [row]
        first = first or row
        now = (row.fits, row.generation_tokens_per_s, row.ctx_size if row.fits else plan.settings.ctx_size)
        if row.fits and now == previous:  # this size changed nothing: a larger one will not either
            break
        previous = now
    return [first] if first else []


def _gpu_option(gpus: Sequence[Gpu]) -> list[str]:
    names = [g.db_match or g.name for g in gpus]
    if len(set(names)) == 1:
        return ["--gpu", names[0] if len(names) == 1 else f"{len(names)}x {names[0]}"]
    return [part for name in names for part in ("--gpu", name)]


def _without_split(request: PlanRequest, hw: Hardware) -> PlanRequest:
    """A request on other GPUs: a --tensor-split given for the old ones no longer applies."""
    return _with_overrides(request.model_copy(update={"hardware": hw}), tensor_split=None)


def _price_of(gpu: Gpu, offers: Sequence[GpuOffer]) -> float | None:
    name = gpu.db_match or gpu.name
    return next((o.price for o in offers if o.gpu.name == name), None)


def _second_gpu(ctx: _Context, offers: Sequence[GpuOffer]) -> list[Upgrade]:
    """One more card like the first; on a probed machine it gets the first card's free memory (what other
    programs hold there is assumed held on the new one too: the cautious side)."""
    hw = ctx.request.hardware
    if not hw.gpus:
        return []
    first = hw.gpus[0]
    added = first.model_copy(update={"index": len(hw.gpus), "uuid": None, "processes": []})
    gpus = [*hw.gpus, added]
    change = f"a second {first.name}" if len(hw.gpus) == 1 else f"another {first.name} ({len(gpus)} GPUs)"
    request = _without_split(ctx.request, hw.model_copy(update={"gpus": gpus}))
    return [ctx.attempt(request, change, "second_gpu", _gpu_option(gpus), _price_of(first, offers))]


def speed_bound(plan: Plan, hw: Hardware, gpus: Sequence[Gpu], margin_bytes: int | None = None) -> float:
    """Tokens/s no plan of this model file on `gpus` (with this host) can beat; 0 when the file cannot fit at all.

    The weights read per token are at least the plan's bytes per token less all the KV cache it holds (or, with
    no such figure, WEIGHTS_READ_SHARE of the file, of the active experts' share for an MoE); the GPUs, less their
    safety margins, read what they can hold at GPU_ETA_BOUND of their bandwidth, the host the rest at the speed
    model's CPU efficiency."""
    model = plan.model
    room = sum(
        max(0, g.usable_bytes - m)
        for g, m in zip(gpus, margins_for(hw.model_copy(update={"gpus": list(gpus)}), margin_bytes))
    )
    host = host_capacity(hw)
    if room + host < model.size_bytes:
        return 0.0
    per_token = sum(plan.speed.gpu_bytes_per_token) + plan.speed.host_bytes_per_token
    kv_held = sum(d.kv_cache_bytes for d in plan.memory.devices) + plan.memory.host.kv_cache_bytes
    if per_token > kv_held:
        read = float(per_token - kv_held)
    else:
        active = model.n_expert_used / model.n_expert if model.n_expert and model.n_expert_used else 1.0
        read = WEIGHTS_READ_SHARE * model.size_bytes * active
    on_gpus = min(read, room)
    slowest = min((g.memory_bandwidth_gbs or 0.0) for g in gpus) if gpus else 0.0
    seconds = 0.0
    if on_gpus:
        if slowest <= 0:
            return float("inf")  # a card without a bandwidth figure: nothing to bound it by
        seconds += on_gpus / (GPU_ETA_BOUND * slowest * 1e9)
    seconds += (read - on_gpus) / (DEFAULT_CONSTANTS.eta_base["cpu"] * host_bandwidth(hw.cpu) * 1e9)
    return 1.0 / seconds if seconds > 0 else float("inf")


def _other_gpus(
    ctx: _Context, floors: Floors, offers: Sequence[GpuOffer], prices_given: bool, notes: list[str]
) -> list[Upgrade]:
    """Cards from the database in place of the machine's (as many as it has): with prices, the cheapest that fix
    it; without, the smallest: per VRAM size (smallest first), the fastest card is re-planned, and where it fixes
    it the slowest of that size that does is shown; a size whose fastest card does not is passed over."""
    hw = ctx.request.hardware
    count = max(1, len(hw.gpus))
    names = {g.db_match or g.name for g in hw.gpus}
    have_vram = min((g.memory_total_bytes for g in hw.gpus), default=0)
    have_bw = max((g.memory_bandwidth_gbs or 0.0 for g in hw.gpus), default=0.0)
    considered = [
        o
        for o in offers
        if o.gpu.name not in names
        and (o.gpu.memory_total_bytes > have_vram or (o.gpu.memory_bandwidth_gbs or 0.0) > have_bw)
        and (o.price is not None or not prices_given)
    ]

    def machine(offer: GpuOffer) -> list[Gpu]:
        return [offer.gpu.model_copy(update={"index": i}) for i in range(count)]

    margin = ctx.request.margin_bytes
    hopeful = [o for o in considered if speed_bound(ctx.plan, hw, machine(o), margin) >= floors.speed]
    current = f"{count}x {hw.gpus[0].name}" if count > 1 and len(names) == 1 else ", ".join(g.name for g in hw.gpus)
    tried = 0

    def attempt(offer: GpuOffer) -> Upgrade:
        nonlocal tried
        tried += 1
        gpus = machine(offer)
        label = offer.gpu.name if count == 1 else f"{count}x {offer.gpu.name}"
        change = f"{current} -> {label}" if hw.gpus else f"add one {offer.gpu.name}"
        request = _without_split(ctx.request, hw.model_copy(update={"gpus": gpus}))
        return ctx.attempt(request, change, "gpu", _gpu_option(gpus), offer.price)

    def bandwidth(o: GpuOffer) -> float:
        return o.gpu.memory_bandwidth_gbs or 0.0

    rows: list[Upgrade] = []
    if prices_given:
        order = "cheapest first, by the prices given"
        for offer in sorted(hopeful, key=lambda o: (o.price or 0.0, o.gpu.memory_total_bytes, bandwidth(o))):
            if tried == GPU_REPLANS or len(rows) == GPU_FIXES:
                break
            row = attempt(offer)
            if row.fixes:
                rows.append(row)
    else:
        order = (
            "no prices given (--prices FILE): by VRAM, smallest first; in each size the fastest card first, and "
            "where it fixes it the slowest of that size that does"
        )
        sizes = sorted({o.gpu.memory_total_bytes for o in hopeful})
        for size in sizes:
            if tried >= GPU_REPLANS or len(rows) == GPU_FIXES:
                break
            tier = sorted((o for o in hopeful if o.gpu.memory_total_bytes == size), key=bandwidth)
            fastest = attempt(tier[-1])
            if not fastest.fixes:
                continue
            for offer in tier[:-1]:
                if tried >= GPU_REPLANS:
                    break
                row = attempt(offer)
                if row.fixes:
                    fastest = row
                    break
            rows.append(fastest)
    notes.append(
        f"other cards: {len(considered)} in the database have more VRAM or bandwidth than this machine's"
        + (" and a price" if prices_given else "")
        + f"; {len(considered) - len(hopeful)} ruled out by a bound (too small for the file, or under "
        f"{floors.speed:g} tokens/s even at {GPU_ETA_BOUND:.0%} of their bandwidth); {tried} re-planned ({order})"
        + ("" if rows else "; none of those fixes it")
    )
    return rows
