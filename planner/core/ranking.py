"""Orders among model files: the quality order of llama.cpp file types, and a coarse strength across models."""

from __future__ import annotations

import math

from planner.types.model import ModelFacts

# Quality order of llama.cpp file types, best first, for choosing among the files of one model. Q8_0 comes before
# the 16-bit files: its perplexity is within 0.0004 of F16 on Llama-3-8B (hardware_db/quants.yaml) and it is
# half the size and about twice as fast to generate with; ask for F16 with --quant.
QUANT_ORDER = [
    "Q8_0", "F16", "BF16", "F32", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "MXFP4_MOE", "Q4_K_S",
    "IQ4_XS", "IQ4_NL", "Q4_1", "Q4_0", "Q3_K_L", "IQ3_M", "Q3_K_M", "IQ3_S", "IQ3_XS", "Q3_K_S", "IQ3_XXS",
    "Q2_K", "IQ2_M", "Q2_K_S", "IQ2_S", "IQ2_XS", "IQ2_XXS", "TQ2_0", "IQ1_M", "TQ1_0", "IQ1_S",
]  # fmt: skip


def quant_rank(quant: str) -> int:
    """Position in QUANT_ORDER (0 is best); a name it does not know sorts last."""
    q = quant.upper()
    return QUANT_ORDER.index(q) if q in QUANT_ORDER else len(QUANT_ORDER)


def model_strength(facts: ModelFacts) -> float:
    """A coarse cross-model ranking for recommendations: log of parameters (active parameters for MoE)."""
    active = float(facts.n_params)
    if facts.is_moe and facts.layer_expert_bytes and facts.size_bytes:
        share = sum(facts.layer_expert_bytes) / facts.size_bytes
        active = facts.n_params * (1 - share + share * facts.n_expert_used / max(1, facts.n_expert))
        # an MoE is stronger than its active size alone: geometric mean of active and total
        active = math.sqrt(active * facts.n_params)
    return math.log10(max(active, 1))
