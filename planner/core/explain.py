"""The words of a plan: why this file, these layers, this context; and what published quality says."""

from __future__ import annotations

from planner.core.memory import MiB, kv_bytes_per_token
from planner.core.objective import NEAR_TIE, Option
from planner.core.search import CTX_LADDER, Candidate, Fit, SearchResult, payload_of
from planner.types.hardware import Hardware
from planner.types.model import ModelFacts
from planner.types.plan import Overrides, Settings


def kv_cost_line(facts: ModelFacts, settings: Settings) -> str:
    per_token = kv_bytes_per_token(facts, settings.cache_type_k, settings.cache_type_v)
    kv = f"{settings.cache_type_k}/{settings.cache_type_v}"
    return f"KV cache costs {per_token / 1024:.0f} KiB per token of context ({kv})"


# bits a cached value takes (ggml block layouts: q8_0 34 bytes per 32 values, q4_0 18, q4_1 20, q5_0 22, q5_1 24)
KV_BITS = {"f32": 32.0, "f16": 16.0, "bf16": 16.0, "q8_0": 8.5, "q5_1": 6.0, "q5_0": 5.5, "q4_1": 5.0, "q4_0": 4.5,
           "iq4_nl": 4.5}  # fmt: skip


def kv_type_line(kind: str, kv: str) -> str:
    """One true sentence per KV type: its size against f16, derived from its block layout."""
    bits = KV_BITS.get(kv)
    if bits is None or kv in ("f16", "bf16"):
        return f"{kind} cache {kv}: llama.cpp's default precision"
    if bits > 16:
        return f"{kind} cache {kv}: {bits / 16:.0f}x the size of f16, for no quality gain over it"
    cost = "close to f16 in quality" if kv == "q8_0" else "with a measurable quality cost against f16"
    return f"{kind} cache {kv}: {bits:g} bits a value, {16 / bits:.1f}x smaller than f16, {cost}"


def overflow_line(fit: Fit, hw: Hardware) -> str:
    """What a configuration that does not fit needs: the device that overflows, by how much, and the change."""
    gib = 2**30
    for dev in fit.memory.devices:
        if dev.total_bytes > dev.capacity_bytes:
            over = dev.total_bytes - dev.capacity_bytes
            return (
                f"needs {over / gib:.2f} GiB more than GPU{dev.index} ({dev.name}) has free after the margin "
                f"({dev.total_bytes / gib:.2f} of {dev.capacity_bytes / gib:.2f} GiB) even with "
                f"{fit.settings.n_gpu_layers} layers on it"
            )
    host = fit.memory.host
    unified = any(g.unified_memory for g in hw.gpus)
    used = host.total_bytes + (sum(d.total_bytes for d in fit.memory.devices) if unified else 0)
    if used > host.capacity_bytes:
        placed = (
            f", with the GPUs holding all they can (-ngl {fit.settings.n_gpu_layers})"
            if fit.memory.devices and not unified
            else ""
        )
        return (
            f"needs {used / gib:.2f} GiB of RAM, {(used - host.capacity_bytes) / gib:.2f} GiB more than the "
            f"{host.capacity_bytes / gib:.2f} GiB available{placed}: it would fit with that much more RAM"
        )
    return "fits"


def choice_reasons(result: SearchResult, hw: Hardware, *, margin_given: bool, ov: Overrides) -> list[str]:
    """The plan's reasons, each read off the comparison the search made (its options and why each lost)."""
    choice = result.choice
    assert choice is not None
    opt = choice.chosen
    cand, fit = payload_of(opt)
    facts = cand.facts
    s = fit.settings
    reasons = []
    if s.gpu_off:
        reasons.append(
            "the GPU memory left free is too small for even llama.cpp's own context and compute buffer: this plan "
            "runs on the CPU and keeps llama.cpp off the GPU (--device none)"
        )
    reasons.append(_headline(result, opt))
    better = [(c, o) for c, o in result.per_candidate if c.quant != cand.quant and o is not None and o.rank < opt.rank]
    if better:
        reasons.append(
            "better files lost: " + "; ".join(f"{c.quant}: {choice.why_not.get(id(o), '')}" for c, o in better[:3])
        )
    unfit = [c.quant for i, (c, o) in enumerate(result.per_candidate) if o is None and i < opt.rank]
    if unfit:
        nowhere = "do not fit entirely on the GPU" if result.full_offload_only else "fit nowhere here"
        reasons.append(f"better files that {nowhere}: {', '.join(unfit[:4])}")
    if s.n_cpu_moe:
        reasons.append(
            f"every layer's attention on the GPU, the experts of the first {s.n_cpu_moe} of {facts.n_layer} layers "
            f"in RAM (--n-cpu-moe {s.n_cpu_moe}): only the {facts.n_expert_used} experts a token uses are read"
        )
    reasons.append(_context_reason(result, opt))
    if (s.cache_type_k, s.cache_type_v) != ("f16", "f16"):
        reasons.append(_kv_reason(result, opt, ov))
    if s.flash_attn == "on":
        reasons.append("flash attention on: attention scratch and the mask stay small at long context")
    if fit.memory.devices:
        dev = fit.memory.devices[0]
        how = "as given (--margin)" if margin_given else "(3 % of VRAM, within 256 MiB to 1 GiB)"
        reasons.append(
            f"{fit.memory.margin_bytes / MiB:.0f} MiB kept free per GPU as a safety margin {how}; runtime "
            f"overhead {dev.overhead_bytes / MiB:.0f} MiB per GPU counted"
        )
    if ov.threads:
        reasons.append(f"{s.threads} threads, as given")
    else:
        reasons.append(_threads_reason(s.threads, hw))
    comparison = quality_comparison(cand)
    if comparison:
        reasons.append(comparison)
    return reasons


def _threads_reason(threads: int, hw: Hardware) -> str:
    """Why this many threads, true for the CPU planned for: which cores it has, and which CPU when not probed."""
    cpu = hw.cpu
    whose = f" of the {cpu.model}" if cpu.source.startswith("what-if") else ""
    hybrid = bool(cpu.performance_cores and cpu.performance_cores < cpu.physical_cores)
    smt = cpu.logical_cores > cpu.physical_cores
    left_out = [word for word, present in (("efficiency cores", hybrid), ("hyper-threads", smt)) if present]
    why = f" ({' and '.join(left_out)} slow llama.cpp's matmuls)" if left_out else ""
    if hybrid and threads == cpu.performance_cores:
        return f"{threads} threads: one per performance core{whose}, llama.cpp's own default{why}"
    if threads == cpu.physical_cores:
        return f"{threads} threads: one per physical core{whose}{why}"
    return f"{threads} threads: as given (the CPU{whose} has {cpu.physical_cores} physical cores)"


def _headline(result: SearchResult, opt: Option) -> str:
    choice = result.choice
    assert choice is not None
    obj = result.objective
    where = opt.placement()
    if obj.prefer == "quality":
        return (
            f"{opt.quant} is the best-quality file that fits (--prefer quality: no speed floor); it {where} at "
            f"{opt.speed:g} t/s"
        )
    if obj.prefer == "speed":
        return (
            f"{opt.quant} {where} at {opt.speed:g} t/s: the fastest plan at context {min(obj.floor_ctx, opt.ctx)} "
            "or more (--prefer speed), quality breaking near-ties"
        )
    if obj.prefer == "context":
        usable = (
            f"runs at >= {obj.min_speed:g} t/s" if not choice.slow else f"fits (none reaches {obj.min_speed:g} t/s)"
        )
        return (
            f"{opt.quant} {where} at context {opt.ctx} and {opt.speed:g} t/s: the largest context that {usable} "
            "(--prefer context)"
        )
    if choice.slow:
        return (
            f"nothing reaches the usable {obj.min_speed:g} tokens/s here: {opt.quant} {where} at {opt.speed:g} t/s, "
            f"the fastest plan at context {min(obj.floor_ctx, opt.ctx)} or more (plans within "
            f"{NEAR_TIE:.0%} of it count as equally fast and the better quality wins)"
        )
    return (
        f"{opt.quant} is the best-quality file that runs at a usable speed here: it {where} at {opt.speed:g} t/s "
        f"(>= {obj.min_speed:g} t/s)"
    )


def larger_context_option(result: SearchResult, opt: Option) -> Option | None:
    """The same file at the largest context it reaches beyond the chosen one (the context reason names it)."""
    larger = [o for o in result.options if o.rank == opt.rank and o.ctx > opt.ctx]
    # the same cache type first: its why-not is about the context, not the cache
    return max(larger, key=lambda o: (o.kv == opt.kv, o.ctx, o.speed)) if larger else None


def exact_kv_option(result: SearchResult, opt: Option) -> Option | None:
    """The same file with an f16 cache at the chosen context, when the chosen cache is quantized (the KV reason
    names it)."""
    if opt.kv_rank == 0:
        return None
    same = [o for o in result.options if o.rank == opt.rank and o.kv_rank == 0 and o.ctx == opt.ctx]
    return max(same, key=lambda o: o.speed) if same else None


def referenced_options(result: SearchResult) -> list[Option]:
    """Options the reasons cite, so the alternatives table always shows them."""
    if result.choice is None:
        return []
    opt = result.choice.chosen
    return [o for o in (larger_context_option(result, opt), exact_kv_option(result, opt)) if o is not None]


def _context_reason(result: SearchResult, opt: Option) -> str:
    choice = result.choice
    assert choice is not None
    obj = result.objective
    cand, fit = payload_of(opt)
    facts = cand.facts
    cost = kv_cost_line(facts, fit.settings)
    if choice.below_floor:
        return (
            f"context {opt.ctx} tokens, under the {obj.floor_ctx}-token floor: no file fits at {obj.floor_ctx} here "
            f"({cost})"
        )
    top = larger_context_option(result, opt)
    if top is not None:
        lost = choice.why_not.get(id(top), "was not chosen")
        return f"context {opt.ctx} tokens: {top.label()} also fits, but {lost} ({cost})"
    limit = "--ctx" if obj.target_ctx == opt.ctx and obj.floor_ctx == opt.ctx else None
    if limit:
        return f"context {opt.ctx} tokens, as given ({cost})"
    if opt.ctx >= (facts.context_length or opt.ctx):
        return f"context {opt.ctx} tokens: the model's own maximum ({cost})"
    if opt.ctx >= obj.target_ctx:
        return f"context {opt.ctx} tokens: the target (--ctx asks for more; {cost})"
    fits = "fits entirely on the GPU" if result.full_offload_only else "fits"
    return (
        f"context {opt.ctx} tokens: the largest on the ladder {list(CTX_LADDER)} at which {opt.quant} {fits} "
        f"({cost}; the model was trained for {facts.context_length})"
    )


def _kv_reason(result: SearchResult, opt: Option, ov: Overrides) -> str:
    choice = result.choice
    assert choice is not None
    k, v = opt.kv
    lines = [kv_type_line("K", k)] + ([kv_type_line("V", v)] if v != k else [])
    text = "; ".join(lines) if v != k else lines[0].replace("K cache", "KV cache")
    if ov.cache_type_k or ov.cache_type_v:
        return text + " (as given)"
    f16 = exact_kv_option(result, opt)
    if f16 is not None:
        return text + (
            f"; with an f16 cache at context {opt.ctx} the same file {f16.placement()} at {f16.speed:g} t/s "
            f"against {opt.speed:g}"
        )
    where = " entirely on the GPU" if result.full_offload_only else ""
    return text + f"; an f16 cache does not fit {opt.quant} at context {opt.ctx}{where} here"


def quality_comparison(chosen: Candidate) -> str | None:
    """ "Qwen1.5-14B Q2_K (PPL 12.27) beats Qwen1.5-7B F16 (14.21)" from the published figures of its peers."""
    if chosen.quality is None or chosen.quality.metric != "perplexity":
        return None
    beaten = [p for p in chosen.peers if p.perplexity > chosen.quality.value]
    if not beaten:
        return None
    peer = max(beaten, key=lambda p: p.n_params)
    return (
        f"quality: {chosen.model} {chosen.quant} (PPL {chosen.quality.value:g}) beats {peer.name} even at "
        f"{peer.quant} (PPL {peer.perplexity:g}; {peer.source.split(';')[0].split(' (')[0]})"
    )
