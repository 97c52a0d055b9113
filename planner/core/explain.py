"""The words of a plan: why this file, these layers, this context; and what published quality says."""

from __future__ import annotations

from planner.core.memory import MiB, kv_bytes_per_token
from planner.core.ranking import quant_rank
from planner.core.search import CTX_LADDER, Candidate, Fit
from planner.types.hardware import Hardware
from planner.types.model import ModelFacts
from planner.types.plan import Settings


def kv_cost_line(facts: ModelFacts, settings: Settings) -> str:
    per_token = kv_bytes_per_token(facts, settings.cache_type_k, settings.cache_type_v)
    return f"KV cache costs {per_token / 1024:.0f} KiB per token of context ({settings.cache_type_k})"


def reasons_for(chosen: Candidate, fit: Fit, evaluated: list[tuple[Candidate, Fit | None]], hw: Hardware) -> list[str]:
    facts = chosen.facts
    s = fit.settings
    reasons = []
    better = [
        c
        for c, f in evaluated
        if c is not chosen and quant_rank_of(c) < quant_rank_of(chosen) and not (f and f.full_offload)
    ]
    if s.gpu_off:
        reasons.append(
            "the GPU memory left free is too small for even llama.cpp's CUDA context and compute buffer: this plan "
            "runs on the CPU and keeps llama.cpp off the GPU (--device none)"
        )
    if fit.full_offload:
        reasons.append(
            f"{chosen.quant} is the best quant of {chosen.model} that fits entirely in GPU memory"
            + (f" (better ones do not: {', '.join(c.quant for c in better[:3])})" if better else "")
        )
    elif hw.gpus and s.n_cpu_moe:
        reasons.append(
            f"{chosen.quant}: every layer's attention on the GPU, the experts of the first {s.n_cpu_moe} of "
            f"{facts.n_layer} layers in RAM (--n-cpu-moe {s.n_cpu_moe}); only the {facts.n_expert_used} experts a "
            f"token uses are read, so this generates at {fit.speed.generation_tokens_per_s:g} tokens/s with better "
            "quality than a low-bit file squeezed onto the GPU"
        )
    elif hw.gpus:
        reasons.append(
            f"no better quant fits entirely on the GPU at a useful context; {chosen.quant} with {s.n_gpu_layers} of "
            f"{facts.n_layer + 1} layers offloaded is the best quality that still generates at "
            f"{fit.speed.generation_tokens_per_s:g} tokens/s"
        )
    else:
        reasons.append(f"CPU only: {chosen.quant} is the best quant that fits in RAM")
    if fit.context_capped_from:
        reasons.append(
            f"context {s.ctx_size} tokens: {fit.context_capped_from} would fit, but at "
            f"{fit.speed.prompt_tokens_per_s:g} tokens/s of prompt processing filling it would take "
            f"{fit.context_capped_from / max(fit.speed.prompt_tokens_per_s, 0.1) / 60:.0f} minutes "
            f"({kv_cost_line(facts, s)}; --ctx asks for more)"
        )
    else:
        reasons.append(
            f"context {s.ctx_size} tokens: the largest on the ladder {list(CTX_LADDER)} that fits "
            f"({kv_cost_line(facts, s)}; the model was trained for {facts.context_length})"
        )
    if s.cache_type_k != "f16":
        reasons.append(
            f"KV cache {s.cache_type_k}: halves the cache against f16 at a negligible quality cost, which buys the "
            "context above"
        )
    if s.flash_attn == "on":
        reasons.append(
            "flash attention on: attention scratch and the mask stay small at long context (llama.cpp runs it on "
            "the CPU and on every CUDA card, Pascal included)"
        )
    if fit.memory.devices:
        dev = fit.memory.devices[0]
        reasons.append(
            f"{fit.memory.margin_bytes / MiB:.0f} MiB kept free per GPU as a safety margin "
            f"(3 % of VRAM, within 256 MiB to 1 GiB); runtime overhead {dev.overhead_bytes / MiB:.0f} MiB per GPU "
            "counted"
        )
    reasons.append(_threads_reason(s.threads, hw))
    comparison = quality_comparison(chosen)
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


def quant_rank_of(c: Candidate) -> int:
    return quant_rank(c.quant)


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
