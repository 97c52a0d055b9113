"""From a search's choice to a Plan: the command line, the warnings, the alternatives, the nothing-fits answer.

The two entry points of the pure core. Both get their candidates with facts already read (planner.api reads them
through planner.models.candidates) and return a Plan; neither touches a file or the network.
"""

from __future__ import annotations

from planner.core.argv import llama_cpp_python_args, llama_server_args
from planner.core.capacity import host_capacity, margins_for
from planner.core.explain import reasons_for
from planner.core.memory import kv_bytes_per_token
from planner.core.recommend import ModelOption, recommend
from planner.core.search import LLAMA_CPP_BUILD, Candidate, Fit, choose, closest_attempt
from planner.core.speed import disk_seconds_per_token
from planner.errors import BadInput, NothingFits
from planner.types.hardware import Hardware
from planner.types.model import ModelFacts, ModelFile, PlannedModel
from planner.types.plan import Alternative, Plan, PlanRequest, Runtime


def plan_named(candidates: list[Candidate], request: PlanRequest, notices: list[str] | None = None) -> Plan:
    """The plan for one named model: the best of its files on request.hardware, or why none fits."""
    hw = request.hardware
    warnings = [*hw.warnings, *(notices or [])]
    if not candidates:
        raise BadInput(f"{request.model}: no GGUF model file to plan with")
    chosen, fit, evaluated = choose(candidates, hw, request.overrides, request.runtime, request.margin_bytes)
    alternatives = [alternative_of(c, f) for c, f in evaluated if c is not chosen]
    if chosen is None or fit is None:
        return _nothing_fits(candidates, request, warnings, alternatives)
    reasons = reasons_for(chosen, fit, evaluated, hw)
    return _finish(chosen, fit, request, reasons, warnings, alternatives)


def plan_recommended(models: list[ModelOption], request: PlanRequest) -> Plan:
    """The plan for the strongest catalog model that runs fluently on request.hardware."""
    hw = request.hardware
    ranked = recommend(models, hw, request.overrides, request.runtime, request.margin_bytes)
    if not ranked:
        raise NothingFits("no catalog model runs usably on this hardware, not even the smallest")
    best = ranked[0]
    alternatives = [alternative_of(r.candidate, r.fit) for r in ranked[1:10]]
    reasons = [best.why, *reasons_for(best.candidate, best.fit, best.evaluated, hw)[1:]]
    return _finish(best.candidate, best.fit, request, reasons, list(hw.warnings), alternatives)


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


def planned_model(cand: Candidate) -> PlannedModel:
    """What the plan says about the model: its name, the exact files and revision, and its shape."""
    facts = cand.facts
    files = list(cand.files) or [ModelFile(path=f) for f in facts.files]
    mmproj = ModelFile(path=facts.mmproj_file, size_bytes=facts.mmproj_bytes) if facts.mmproj_file else None
    return PlannedModel.model_validate(
        {**facts.summary(), "name": cand.model, "revision": cand.revision, "file_info": files, "mmproj": mmproj}
    )


def disk_bound_speed(facts: ModelFacts, hw: Hardware) -> float:
    return disk_seconds_per_token(facts, host_capacity(hw), hw.disk.read_bandwidth_gbs)


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
    if ov.n_cpu_moe and not facts.is_moe:
        warnings.append(f"--n-cpu-moe {ov.n_cpu_moe} has no effect: {cand.model} has no experts")
    if ov.n_gpu_layers is not None and ov.n_gpu_layers > facts.n_layer + 1:
        warnings.append(f"--ngl {ov.n_gpu_layers}: the model has {facts.n_layer + 1} units, all of them offloaded")
    if facts.origin == "catalog":
        warnings.append(
            "model facts come from the offline catalog (no hub access): sizes and layout are from the catalog "
            "entry's basis; run with network access for the file's real header"
        )
    for gpu in request.hardware.gpus:
        if gpu.fp16_crippled and cand.quant.upper() in ("F16", "BF16"):
            warnings.append(f"{gpu.name}: FP16 runs at a tiny fraction of FP32 on this chip; prefer a quantized file")
    return _plan_from(cand, fit, request, reasons, warnings, alternatives)


def _nothing_fits(
    candidates: list[Candidate], request: PlanRequest, warnings: list[str], alternatives: list[Alternative]
) -> Plan:
    hw = request.hardware
    smallest = min(candidates, key=lambda c: c.size_bytes)
    facts = smallest.facts
    margins = margins_for(hw, request.margin_bytes)
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
    plan = _plan_from(smallest, closest, request, reasons, warnings, alternatives)
    plan.fits = False
    plan.where = "disk"
    return plan
