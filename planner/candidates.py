"""Where the solver's candidates come from: a named model (hub, local path, catalog) or the catalog's picks.

This is the I/O edge of planning: it lists files and reads headers (through planner.models.sources), or falls back
to the offline catalog. The solver gets plain Candidates with lazy fact loaders, so it reads only the headers of
files it actually considers.
"""

from __future__ import annotations

import math
from pathlib import Path

from planner.errors import BadInput
from planner.models.facts import ModelFacts
from planner.plan import Quality
from planner.solve import Candidate

# Quality order of llama.cpp file types, best first, for choosing among the files of one model. Q8_0 comes before
# the 16-bit files: its perplexity is within 0.0004 of F16 on Llama-3-8B (hardware_db/quants.yaml) and it is
# half the size and about twice as fast to generate with; ask for F16 with --quant.
QUANT_ORDER = [
    "Q8_0", "F16", "BF16", "F32", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "MXFP4_MOE", "Q4_K_S",
    "IQ4_XS", "IQ4_NL", "Q4_1", "Q4_0", "Q3_K_L", "IQ3_M", "Q3_K_M", "IQ3_S", "IQ3_XS", "Q3_K_S", "IQ3_XXS",
    "Q2_K", "IQ2_M", "Q2_K_S", "IQ2_S", "IQ2_XS", "IQ2_XXS", "TQ2_0", "IQ1_M", "TQ1_0", "IQ1_S",
]  # fmt: skip


def quant_rank(quant: str) -> int:
    q = quant.upper()
    return QUANT_ORDER.index(q) if q in QUANT_ORDER else len(QUANT_ORDER)


def _catalog_quality(model, quant: str) -> Quality | None:  # noqa: ANN001 - CatalogModel, imported lazily
    for fig in model.quality:
        if fig.quant.upper() == quant.upper():
            return Quality(metric="perplexity", value=fig.value, source=fig.source, note=fig.metric)
    return None


def _hardware_allows(quant: str, compute_capabilities: list[tuple[int, int]]) -> bool:
    """BF16 weights need compute capability >= 8.0 on NVIDIA (no bf16 math below Ampere)."""
    return not (quant.upper() == "BF16" and any(cc < (8, 0) for cc in compute_capabilities))


def catalog_candidates(model, *, only_quant: str | None = None, ccs=()) -> list[Candidate]:  # noqa: ANN001
    from planner.models.catalog import facts_from_catalog

    out = []
    for q in sorted(model.quants, key=lambda q: quant_rank(q.quant)):
        if only_quant and q.quant.upper() != only_quant.upper():
            continue
        if not only_quant and not _hardware_allows(q.quant, list(ccs)):
            continue
        out.append(
            Candidate(
                model=model.name,
                quant=q.quant,
                size_bytes=q.size_bytes,
                file=q.files[0] if q.files else None,
                quality=_catalog_quality(model, q.quant),
                load_facts=lambda m=model, qq=q.quant: facts_from_catalog(m, qq),
            )
        )
    if only_quant and not out:
        model.quant(only_quant)  # raises BadInput listing what is available
    return out


def _resolved_candidates(resolved, only_quant: str | None, ccs=()) -> list[Candidate]:  # noqa: ANN001
    from planner.models.catalog import find
    from planner.models.sources import facts_for

    catalog_entry = (
        find(resolved.catalog_name or resolved.repo or "") if (resolved.catalog_name or resolved.repo) else None
    )
    options = sorted(resolved.candidates, key=lambda c: quant_rank(c.quant))
    if only_quant or resolved.quant:
        wanted = (only_quant or resolved.quant).upper()
        options = [o for o in options if o.quant.upper() == wanted]
    out = []
    for option in options:
        if not (only_quant or resolved.quant) and not _hardware_allows(option.quant, list(ccs)):
            continue
        paths = option.paths
        local = resolved.kind == "local"
        name = (catalog_entry.name if catalog_entry else None) or resolved.repo or Path(paths[0]).stem
        file = None
        if paths:
            file = str(Path(resolved.local_dir or ".") / paths[0]) if local else paths[0]
        out.append(
            Candidate(
                model=name,
                quant=option.quant,
                size_bytes=option.size_bytes,
                file=file,
                quality=_catalog_quality(catalog_entry, option.quant) if catalog_entry else None,
                load_facts=lambda r=resolved, q=option.quant: facts_for(r, q),
            )
        )
    if (only_quant or resolved.quant) and not out:
        have = ", ".join(c.quant for c in resolved.candidates)
        raise BadInput(f"{resolved.source} has no {only_quant or resolved.quant} file (available: {have})")
    return out


def candidates_for(
    source: str, *, quant: str | None, offline: bool, ccs: list[tuple[int, int]]
) -> tuple[list[Candidate], list[str]]:
    """Candidates for a model the user named, and warnings (e.g. 'offline: using the catalog')."""
    from planner.models.sources import resolve_model

    resolved = resolve_model(source, offline=offline, quant=quant)
    candidates = _resolved_candidates(resolved, quant, ccs)
    return candidates, resolved.notices


def recommended_candidates(ccs: list[tuple[int, int]]) -> list[tuple[object, list[Candidate]]]:
    """Every recommendable catalog model with its candidates (best quant first)."""
    from planner.models.catalog import recommendable

    return [(m, catalog_candidates(m, ccs=ccs)) for m in recommendable()]


def model_strength(facts: ModelFacts) -> float:
    """A coarse cross-model ranking for recommendations: log of parameters (active parameters for MoE)."""
    active = facts.n_params
    if facts.is_moe and facts.layer_expert_bytes and facts.size_bytes:
        share = sum(facts.layer_expert_bytes) / facts.size_bytes
        active = facts.n_params * (1 - share + share * facts.n_expert_used / max(1, facts.n_expert))
        # an MoE is stronger than its active size alone: geometric mean of active and total
        active = math.sqrt(active * facts.n_params)
    return math.log10(max(active, 1))
