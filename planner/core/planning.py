"""From a search's choice to a Plan: the command line, the warnings, the alternatives, the nothing-fits answer.

The two entry points of the pure core. Both get their candidates with facts already read (planner.api reads them
through planner.models.candidates) and return a Plan; neither touches a file or the network.
"""

from __future__ import annotations

from planner.core.argv import llama_cpp_python_args, llama_server_args
from planner.core.capacity import host_capacity, margins_for, reachable_bytes
from planner.core.explain import choice_reasons, overflow_line, referenced_options
from planner.core.memory import kv_bytes_per_token
from planner.core.objective import Option, frontier, weakly_dominates
from planner.core.recommend import ModelOption, Ranked, recommend
from planner.core.search import LLAMA_CPP_BUILD, Candidate, Fit, SearchResult, closest_attempt, payload_of, search
from planner.core.speed import disk_seconds_per_token
from planner.errors import BadInput, NothingFits
from planner.types.hardware import Hardware
from planner.types.model import ModelFile, PlannedModel
from planner.types.plan import Alternative, Plan, PlanRequest, Runtime


def plan_named(candidates: list[Candidate], request: PlanRequest, notices: list[str] | None = None) -> Plan:
    """The plan for one named model: the best of its files on request.hardware, or why none fits."""
    hw = request.hardware
    warnings = [*hw.warnings, *(notices or [])]
    if not candidates:
        raise BadInput(f"{request.model}: no GGUF model file to plan with")
    result = search(candidates, hw, request.overrides, request.runtime, request.margin_bytes)
    return plan_of(result, candidates, request, warnings)


def plan_of(result: SearchResult, candidates: list[Candidate], request: PlanRequest, warnings: list[str]) -> Plan:
    """The Plan a search result makes: its choice with reasons and alternatives, or why nothing fits."""
    hw = request.hardware
    alternatives = alternatives_of(result, request)
    if result.choice is None:
        return _nothing_fits(candidates, request, warnings, alternatives)
    chosen, fit = payload_of(result.choice.chosen)
    reasons = choice_reasons(result, hw, margin_given=request.margin_bytes is not None, ov=request.overrides)
    return _finish(chosen, fit, request, reasons, warnings, alternatives)


FRONTIER_ROWS = 8  # frontier plans shown beside each file's own best


def alternatives_of(result: SearchResult, request: PlanRequest) -> list[Alternative]:
    """Each file's own best plan (or why it fits nowhere), then the frontier's other plans; every row says why
    it was not chosen, in the words of the step of the comparison where it lost."""
    choice = result.choice
    chosen = choice.chosen if choice else None
    on_frontier = {id(o) for o in frontier(result.options)}
    rows: list[Alternative] = []
    shown: set[int] = set()
    for cand, option in result.per_candidate:
        if option is chosen and chosen is not None:
            continue
        if option is None:
            rows.append(_unfitting(cand, request, result))
            continue
        shown.add(id(option))
        rows.append(_row(option, choice.why_not.get(id(option), "") if choice else "", id(option) in on_frontier))
    # the frontier's other plans, less those another plan matches or beats everywhere (same speed, less context)
    distinct = [o for o in result.options if not any(weakly_dominates(p, o) for p in result.options)]
    cited = [o for o in referenced_options(result) if id(o) not in shown]
    extra = [o for o in distinct if id(o) not in shown and o is not chosen and all(o is not c for c in cited)]
    extra.sort(key=lambda o: (o.rank, -o.speed, -o.ctx))
    extra = cited + extra
    for option in extra[:FRONTIER_ROWS]:
        rows.append(_row(option, choice.why_not.get(id(option), "") if choice else "", True))
    return rows


def _row(option: Option, why: str, on_frontier: bool) -> Alternative:
    cand, fit = payload_of(option)
    alt = alternative_of(cand, fit)
    alt.why = why
    alt.on_frontier = on_frontier
    return alt


def _unfitting(cand: Candidate, request: PlanRequest, result: SearchResult) -> Alternative:
    alt = alternative_of(cand, None)
    hw = request.hardware
    margins = margins_for(hw, request.margin_bytes)
    reach = reachable_bytes(hw, margins)
    if cand.size_bytes > reach or cand.loaded_facts is None:
        alt.why = (
            f"{cand.size_bytes / 2**30:.1f} GiB is more than the GPUs and RAM can hold together "
            f"({reach / 2**30:.1f} GiB)"
        )
    else:
        closest = closest_attempt(cand.facts, hw, request.overrides, request.runtime, margins)
        over = overflow_line(closest, hw)
        floor = result.objective.floor_ctx
        if over != "fits":
            alt.why = over
        elif closest.settings.ctx_size < floor:
            alt.why = f"fits only at a context under the {floor}-token floor (at {closest.settings.ctx_size})"
        else:
            alt.why = f"fits only with -ub {closest.settings.ubatch_size}, which a partial offload here does not try"
    return alt


def plan_recommended(models: list[ModelOption], request: PlanRequest) -> Plan:
    """The plan for the strongest catalog model that runs fluently on request.hardware."""
    hw = request.hardware
    ranked = recommend(models, hw, request.overrides, request.runtime, request.margin_bytes)
    if not ranked:
        raise NothingFits("no catalog model runs usably on this hardware, not even the smallest")
    best = ranked[0]
    alternatives = [_ranked_row(r, best) for r in ranked[1:10]]
    reasons = [best.why, *choice_reasons(best.result, hw, margin_given=request.margin_bytes is not None,
                                         ov=request.overrides)[1:]]  # fmt: skip
    return _finish(best.candidate, best.fit, request, reasons, list(hw.warnings), alternatives)


def _ranked_row(other: Ranked, best: Ranked) -> Alternative:
    """A runner-up model, with the comparison that ranked it below the recommendation."""
    row = alternative_of(other.candidate, other.fit)
    chosen = f"{best.candidate.model} {best.candidate.quant}"
    basis = "log10 of parameters, less the penalty for low-bit quants"
    if round(other.score, 2) >= round(best.score, 2):
        row.why = (
            f"ties with {chosen} at strength {other.score:.2f} ({basis}); of equals, the first in the catalog is "
            "recommended"
        )
    else:
        row.why = f"ranks below {chosen}: strength {other.score:.2f} against {best.score:.2f} ({basis})"
    return row


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
        cache_type_k=fit.settings.cache_type_k if fit else None,
        cache_type_v=fit.settings.cache_type_v if fit else None,
        n_cpu_moe=fit.settings.n_cpu_moe if fit else 0,
    )


def planned_model(cand: Candidate) -> PlannedModel:
    """What the plan says about the model: its name, the exact files and revision, and its shape."""
    facts = cand.facts
    files = list(cand.files) or [ModelFile(path=f) for f in facts.files]
    mmproj = ModelFile(path=facts.mmproj_file, size_bytes=facts.mmproj_bytes) if facts.mmproj_file else None
    return PlannedModel.model_validate(
        {**facts.summary(), "name": cand.model, "revision": cand.revision, "file_info": files, "mmproj": mmproj}
    )


def command_for(cand: Candidate, fit: Fit, runtime: Runtime) -> list[str]:
    """The command line the plan prints: loopback, port 8080, the model's own file name."""
    path = cand.file or cand.facts.file or "model.gguf"
    alias = cand.model
    if runtime == "llama-cpp-python":
        args, _ignored = llama_cpp_python_args(fit.settings, model_path=path, alias=alias, host="127.0.0.1", port=8080)
        return ["python", "-m", "llama_cpp.server", *args]
    return [
        "llama-server",
        *llama_server_args(fit.settings, model_path=path, alias=alias, host="127.0.0.1", port=8080),
    ]


def _plan_from(
    cand: Candidate, fit: Fit, request: PlanRequest, reasons: list[str], warnings: list[str],
    alternatives: list[Alternative],
) -> Plan:  # fmt: skip
    return Plan(
        model=planned_model(cand),
        hardware=request.hardware,
        runtime=request.runtime,
        fits=True,
        where=fit.where,
        settings=fit.settings,
        memory=fit.memory,
        speed=fit.speed,
        quality=cand.quality,
        command=command_for(cand, fit, request.runtime),
        alternatives=alternatives,
        reasons=reasons,
        warnings=warnings,
        llama_cpp_build=LLAMA_CPP_BUILD,
    )


def _finish(
    cand: Candidate, fit: Fit, request: PlanRequest, reasons: list[str], warnings: list[str],
    alternatives: list[Alternative],
) -> Plan:  # fmt: skip
    facts = cand.facts
    ov = request.overrides
    if ov.n_gpu_layers is not None and ov.n_gpu_layers > facts.n_layer + 1:
        warnings.append(f"--ngl {ov.n_gpu_layers}: the model has {facts.n_layer + 1} units, all of them offloaded")
    if facts.origin == "catalog":
        warnings.append(
            "model facts come from the offline catalog (no hub access): sizes and layout are from the catalog "
            "entry's basis; run with network access for the file's real header"
        )
    if request.keep_off_gpus and not request.hardware.gpus:
        fit.settings.gpu_off = True  # --device none: llama.cpp must not try GPUs it has no code for
    for gpu in request.hardware.gpus:
        if gpu.fp16_crippled and cand.quant.upper() in ("F16", "BF16"):
            warnings.append(f"{gpu.name}: FP16 runs at a tiny fraction of FP32 on this chip; prefer a quantized file")
    return _plan_from(cand, fit, request, reasons, warnings, alternatives)


def _nothing_fits(
    candidates: list[Candidate], request: PlanRequest, warnings: list[str], alternatives: list[Alternative]
) -> Plan:
    """The smallest file at the smallest setting, with the GPUs as full as they can be: which device overflows,
    by how much, and what would make it fit; no tokens/s (it does not run), the disk-bound estimate instead."""
    hw = request.hardware
    smallest = min(candidates, key=lambda c: c.size_bytes)
    facts = smallest.facts
    margins = margins_for(hw, request.margin_bytes)
    closest = closest_attempt(facts, hw, request.overrides, request.runtime, margins)
    on_gpus = sum(d.weights_bytes for d in closest.memory.devices)
    spt = disk_seconds_per_token(facts, host_capacity(hw), hw.disk.read_bandwidth_gbs, gpu_bytes=on_gpus)
    kv_alone = kv_bytes_per_token(facts, closest.settings.cache_type_k, closest.settings.cache_type_v)
    kv_alone *= closest.settings.ctx_size
    if request.overrides.ctx_size and kv_alone > host_capacity(hw) + sum(g.usable_bytes for g in hw.gpus):
        raise NothingFits(
            f"--ctx {request.overrides.ctx_size} needs {kv_alone / 1e9:.1f} GB of KV cache alone "
            f"({kv_bytes_per_token(facts) // 1024} KiB per token in f16); try a smaller --ctx"
        )
    closest.speed = closest.speed.model_copy(
        update={
            "prompt_tokens_per_s": None, "generation_tokens_per_s": None, "low": None, "high": None,
            "prompt_low": None, "prompt_high": None, "disk_bound_seconds_per_token": round(spt, 2),
            "basis": "does not fit: no tokens/s; the disk-bound figure streams the part not held in RAM or on the "
            "GPUs from disk once per token",
        }
    )  # fmt: skip
    alternatives = [a for a in alternatives if a.fits]
    reasons = [
        f"nothing fits: even {smallest.model} {smallest.quant} ({smallest.size_bytes / 1e9:.1f} GB), the smallest "
        f"file, at context {closest.settings.ctx_size} with KV {closest.settings.cache_type_k}: "
        + overflow_line(closest, hw),
        _disk_line(spt, on_gpus, hw),
    ]
    plan = _plan_from(smallest, closest, request, reasons, warnings, alternatives)
    plan.fits = False
    plan.where = "disk"
    return plan


def _disk_line(spt: float, on_gpus: int, hw: Hardware) -> str:
    held = f" ({on_gpus / 2**30:.1f} GiB of weights held on the GPUs, not read from disk)" if on_gpus else ""
    speed = f"{hw.disk.read_bandwidth_gbs:g} GB/s" if hw.disk.read_bandwidth_gbs else "0.5 GB/s (assumed SATA SSD)"
    if spt <= 0:
        return f"the weights would stay in RAM{held}: it is the cache and buffers that do not fit, not the file"
    shown = f"{spt:.0f}" if spt >= 10 else f"{spt:.1f}" if spt >= 0.1 else f"{spt:.3f}"
    return f"streamed from disk through mmap at {speed} it would take about {shown} s per token{held}"
