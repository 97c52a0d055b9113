"""Which catalog model to run when the user names none: the strongest that runs fluently on this hardware."""

from __future__ import annotations

from dataclasses import dataclass
from math import log10

from planner.core.capacity import margins_for, reachable_bytes
from planner.core.ranking import model_strength
from planner.core.search import Candidate, Fit, SearchResult, payload_of, search
from planner.core.speed import host_bandwidth, quant_family
from planner.types.hardware import Hardware
from planner.types.plan import Overrides, Runtime

# A recommendation should read fluently: ~8 tokens/s is about reading speed (5-6 words/s); on a GPU the user
# bought for this, 15.
RECOMMEND_MIN_TPS_CPU = 8.0
RECOMMEND_MIN_TPS_GPU = 15.0
SMALL_MODEL_PARAMS = 7e9  # below this, recommendations skip Q2/Q3/IQ1-3 files

QUANT_PENALTY = {  # log10-parameter units: how much a quant costs against a smaller model at higher precision.
    # Set from Qwen's own perplexity matrix (hardware_db/models, Qwen1.5 cards): 14B Q2_K (12.27) still beats 7B
    # F16 (14.21), a 0.26 log10-size gap, while 0.5B Q2_K (62.1 vs 34.2) collapses: low bits hurt small models.
    "lowbit": 0.15,
    "kquant": 0.02,
    "legacy": 0.03,
    "q8": 0.0,
    "float": 0.0,
}


@dataclass
class ModelOption:
    """One recommendable catalog model: its size class and its files (best quant first), facts read."""

    name: str
    n_params: int
    candidates: list[Candidate]


@dataclass
class Ranked:
    """A model that runs usably here, with its best file and the comparison that chose that file."""

    score: float
    candidate: Candidate
    fit: Fit
    result: SearchResult  # the search that chose this model's file
    why: str


def recommend(
    models: list[ModelOption], hw: Hardware, ov: Overrides, runtime: Runtime, margin_bytes: int | None
) -> list[Ranked]:
    """The models that run usably here, strongest first."""
    ranked: list[Ranked] = []
    floor = RECOMMEND_MIN_TPS_GPU if hw.gpus else RECOMMEND_MIN_TPS_CPU
    # strongest first (log10 of parameters from the catalog), so the search can stop once nothing left can win
    models = sorted(models, key=lambda m: log10(max(m.n_params, 1)), reverse=True)
    best_score = None
    for model in models:
        cands = model.candidates
        if not cands:
            continue
        if best_score is not None and log10(max(model.n_params, 1)) < best_score - 0.5 and len(ranked) >= 6:
            break  # far weaker than the best fitting model, and the alternatives table is full
        if model.n_params < SMALL_MODEL_PARAMS:
            # low bits ruin small models (Qwen1.5 cards: 0.5B Q2_K PPL 62.1 vs 34.2 at F16; 4B 15.65 vs 13.2)
            cands = [c for c in cands if quant_family(c.quant) != "lowbit"]
            if not cands:
                continue
        if not could_be_fluent(cands, hw, floor, margin_bytes):
            continue
        # on a GPU machine a recommendation runs entirely on the GPU (an MoE may keep experts in RAM)
        result = search(cands, hw, ov, runtime, margin_bytes, min_speed=floor, full_offload_only=bool(hw.gpus))
        if result.choice is None or result.choice.chosen.speed < floor:
            continue
        chosen, fit = payload_of(result.choice.chosen)
        if hw.gpus and not fit.full_offload and not fit.settings.n_cpu_moe:
            continue
        facts = chosen.facts
        score = model_strength(facts) - QUANT_PENALTY[quant_family(chosen.quant)]
        why = (
            f"{chosen.model} {chosen.quant} is the strongest catalog model that runs "
            f"{'entirely on your GPU' if fit.full_offload else 'on your hardware'} at "
            f"{result.choice.chosen.speed:g} tokens/s (fluent: >= {floor:g}); ranked by parameter count "
            f"({facts.n_params / 1e9:.1f}B) less a penalty for low-bit quants"
        )
        ranked.append(Ranked(score, chosen, fit, result, why))
        best_score = score if best_score is None else max(best_score, score)
    ranked.sort(key=lambda r: r.score, reverse=True)
    return ranked


def could_be_fluent(cands: list[Candidate], hw: Hardware, floor: float, margin_bytes: int | None) -> bool:
    """A cheap bound before the full search: the smallest file must fit somewhere and, read from RAM at the full
    RAM bandwidth, still reach `floor` tokens/s (an MoE reads only its active share, so it is never ruled out)."""
    smallest = min(cands, key=lambda c: c.size_bytes)
    if smallest.size_bytes > reachable_bytes(hw, margins_for(hw, margin_bytes)):
        return False
    facts = smallest.facts
    if facts.is_moe or hw.gpus:
        return True
    return host_bandwidth(hw.cpu) * 1e9 / max(smallest.size_bytes, 1) >= floor
