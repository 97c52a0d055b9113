"""Which catalog model to run when the user names none: the strongest that runs fluently on this hardware."""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner.core.capacity import margins_for, reachable_bytes
from planner.core.ranking import model_strength
from planner.core.search import Candidate, Fit, SearchResult, payload_of, search
from planner.core.speed import host_bandwidth, quant_family
from planner.types.hardware import Hardware
from planner.types.plan import Overrides, Quality, Runtime

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


@dataclass(frozen=True)
class Rating:
    """A public quality figure of one model for the use case asked (e.g. LMArena's coding category)."""

    value: float
    low: float  # 95 % interval
    high: float
    label: str  # which leaderboard and category, with its date


@dataclass
class ModelOption:
    """One recommendable catalog model: its size class and its files (best quant first), facts read."""

    name: str
    n_params: int
    candidates: list[Candidate]
    rating: Rating | None = None  # None: no public figure for this model and use case


@dataclass(frozen=True)
class SizeFit:
    """rating ~ a + b x strength (log10 of parameters), least squares over the rated options: the exchange rate
    between a decade of parameters and rating points, and the estimate for a model no leaderboard rated."""

    a: float
    b: float
    n: int


def size_fit(models: list[ModelOption]) -> SizeFit | None:
    points = [(model_strength(m.candidates[0].facts), m.rating.value) for m in models if m.rating and m.candidates]
    if len(points) < 3:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx <= 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return SizeFit(my - b * mx, b, len(points)) if b > 0 else None


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
    fit_ = size_fit(models)
    # score units per decade of parameters: rating points when a leaderboard rates enough of the options
    unit = fit_.b if fit_ else 1.0

    def potential(m: ModelOption) -> float:
        """The model's score before its quant's cost: its rating, else its size (in rating points if fitted)."""
        if not m.candidates:
            return float("-inf")
        strength = model_strength(m.candidates[0].facts)
        if fit_ is None:
            return strength
        return m.rating.value if m.rating else fit_.a + fit_.b * strength

    # strongest first, so the search can stop once nothing left can win
    models = sorted(models, key=potential, reverse=True)
    best_score = None
    for model in models:
        cands = model.candidates
        if not cands:
            continue
        if best_score is not None and potential(model) < best_score - 0.5 * unit and len(ranked) >= 6:
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
        cost = QUANT_PENALTY[quant_family(chosen.quant)] * unit
        score = potential(model) - cost
        where = "entirely on your GPU" if fit.full_offload else "on your hardware"
        speed = f"{result.choice.chosen.speed:g} tokens/s (fluent: >= {floor:g})"
        if fit_ is None:
            why = (
                f"{chosen.model} {chosen.quant} is the strongest catalog model that runs {where} at {speed}; "
                f"ranked by parameter count ({facts.n_params / 1e9:.1f}B) less a penalty for low-bit quants"
            )
        else:
            why = rated_why(chosen, model.rating, fit_, score, cost, where, speed)
            # the score is what ranked it: shown as its quality, so the alternatives table can be checked against it
            chosen = replace(chosen, quality=score_quality(score, model.rating))
        ranked.append(Ranked(score, chosen, fit, result, why))
        best_score = score if best_score is None else max(best_score, score)
    ranked.sort(key=lambda r: r.score, reverse=True)
    return ranked


def score_quality(score: float, rating: Rating | None) -> Quality:
    source = rating.label if rating else "estimated from parameter count (no public rating)"
    return Quality(metric="score", value=round(score), source=source, note="rating less the quant's cost")


def rated_why(
    chosen: Candidate, rating: Rating | None, fit_: SizeFit, score: float, cost: float, where: str, speed: str
) -> str:
    """The reason for a ranking by public quality: the figure with its source and date, or how it was estimated."""
    if rating:
        figure = f"{rating.label}: {rating.value:.0f} (95 % interval {rating.low:.0f}-{rating.high:.0f})"
    else:
        figure = (
            f"no public rating; {fit_.a:.0f} + {fit_.b:.0f} x log10(parameters), fitted on the {fit_.n} rated "
            f"options, estimates it"
        )
    quant = (
        f", less {cost:.0f} for {chosen.quant} (the low-bit penalty in rating points at {fit_.b:.0f} per decade "
        "of parameters)"
        if cost >= 0.5
        else ""
    )
    return (
        f"{chosen.model} {chosen.quant} scores {score:.0f} ({figure}{quant}); catalog models that run fluently "
        f"here are ranked by this score; it runs {where} at {speed}"
    )


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
