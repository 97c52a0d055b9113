"""A corpus of hardware x model scenarios for the objective's invariants (tests/test_decisions.py) and for
bench/decisions.py: single cards from Kepler to Blackwell, multi-GPU, mixed cards, Apple, AMD, CPU-only machines,
dense and MoE models from 0.5B to 405B, all from hardware_db/ and the offline catalog. Pure: no probe, no network."""

from __future__ import annotations

from dataclasses import dataclass

from planner.core.planning import alternatives_of
from planner.core.search import Candidate, SearchResult, search
from planner.data.catalog import find, load_catalog
from planner.hardware.whatif import resolve_hardware
from planner.models.candidates import catalog_candidates, peers_of
from planner.types.hardware import Hardware
from planner.types.plan import Overrides, PlanRequest

# (gpus, RAM, physical cores)
MACHINES: list[tuple[list[str], str, int]] = [
    (["Tesla K80"], "32GB", 8),
    (["Tesla M40 24GB"], "64GB", 8),
    (["2x Tesla M40 24GB"], "128GB", 8),
    (["Tesla P4"], "8GB", 4),
    (["Tesla P40"], "64GB", 8),
    (["8x Tesla P40"], "256GB", 16),
    (["Tesla P100 PCIe 16GB"], "32GB", 8),
    (["Tesla V100 SXM2 32GB"], "128GB", 16),
    (["Tesla T4"], "32GB", 8),
    (["GTX 1080 Ti"], "16GB", 4),
    (["RTX 2080 Ti"], "32GB", 8),
    (["RTX 3060"], "32GB", 6),
    (["8x RTX 3060"], "128GB", 16),
    (["RTX 3090"], "64GB", 8),
    (["2x RTX 3090"], "64GB", 8),
    (["RTX 3090", "RTX 3060"], "64GB", 8),
    (["RTX 4060 Ti 16GB"], "32GB", 8),
    (["RTX 4090"], "32GB", 8),
    (["RTX 5090"], "64GB", 8),
    (["A100 SXM4 80GB"], "256GB", 32),
    (["H100 SXM"], "256GB", 32),
    (["8x H100 SXM"], "1024GB", 64),
    (["B200"], "512GB", 64),
    (["M2 Max"], "64GB", 8),
    (["M3 Max (40-core GPU)"], "128GB", 12),
    (["M4"], "16GB", 4),
    (["Instinct MI50 32GB"], "64GB", 8),
    (["Radeon RX 7900 XTX"], "64GB", 8),
    (["none"], "8GB", 4),
    (["none"], "16GB", 8),
    (["none"], "64GB", 16),
]
MODELS = [
    "Qwen2.5-0.5B-Instruct",
    "Llama-3.2-3B-Instruct",
    "Meta-Llama-3.1-8B-Instruct",
    "Qwen1.5-14B-Chat",
    "Qwen3-30B-A3B",
    "Llama-3.3-70B-Instruct",
    "Qwen3-235B-A22B",
    "Meta-Llama-3.1-405B-Instruct",
]


@dataclass
class Scenario:
    name: str
    hardware: Hardware
    candidates: list[Candidate]
    overrides: Overrides

    def request(self) -> PlanRequest:
        return PlanRequest(model=self.candidates[0].model, hardware=self.hardware, overrides=self.overrides)

    def search(self) -> SearchResult:
        return search(self.candidates, self.hardware, self.overrides, "llama-server", None)


def scenarios() -> list[Scenario]:
    catalog = load_catalog()
    out = []
    for gpus, ram, cores in MACHINES:
        hw = resolve_hardware(gpus, ram, cores, None)
        for name in MODELS:
            entry = find(name)
            assert entry is not None, name
            cands = catalog_candidates(entry, hw, peers=peers_of(entry, catalog))
            out.append(Scenario(f"{'+'.join(gpus)} {ram} / {name}", hw, cands, Overrides()))
    # every knob of the objective, on every fifth pair
    for base in out[::5]:
        for knobs in KNOBS:
            out.append(Scenario(f"{base.name} {knobs}", base.hardware, base.candidates, Overrides(**knobs)))
    return out


KNOBS: list[dict[str, object]] = [
    {"prefer": "quality"}, {"prefer": "speed"}, {"prefer": "context"}, {"min_speed": 15.0},
    {"min_ctx": 16384}, {"use_case": "reasoning"},
]  # fmt: skip


__all__ = ["MACHINES", "MODELS", "Scenario", "alternatives_of", "scenarios"]
