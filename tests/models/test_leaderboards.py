"""Public quality figures: keyed to catalog models, sourced and dated; recommendations rank by them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from planner.core.recommend import QUANT_PENALTY, recommend, size_fit
from planner.core.speed import quant_family
from planner.data import catalog
from planner.data.leaderboards import USE_CASES, load_leaderboards, ratings_for
from planner.hardware.whatif import resolve_hardware
from planner.models.candidates import recommended_models
from planner.types.plan import Overrides

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = [(["none"], "16GB"), (["RTX 4060"], "32GB"), (["RTX 3090"], "32GB"), (["2x RTX 3090"], "64GB")]


def test_every_figure_names_a_catalog_model_a_dated_source_and_an_interval() -> None:
    names = {m.name for m in catalog.load_catalog()}
    boards = load_leaderboards()
    assert boards
    for board in boards:
        for source in board.sources.values():
            assert re.search(r"/blob/[0-9a-f]{40}/", source.url), source.url  # the exact commit read
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source.date) and source.covers
        assert set(board.models) <= names
        for figures in board.models.values():
            for use_case in USE_CASES:
                f = getattr(figures.lmarena, use_case, None) if figures.lmarena else None
                if f is not None:
                    assert f.low <= f.rating <= f.high


@pytest.mark.parametrize("use_case", USE_CASES)
@pytest.mark.parametrize("gpus, ram", SCENARIOS)
def test_the_recommendation_ranks_by_rating_less_the_quants_cost(use_case: str, gpus: list[str], ram: str) -> None:
    hw = resolve_hardware(gpus, ram, 8, None)
    models = recommended_models(hw, use_case)
    fit = size_fit(models)
    assert fit is not None and fit.b > 0 and fit.n >= 10
    ranked = recommend(models, hw, Overrides(), "llama-server", None)
    assert ranked
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    ratings = ratings_for(use_case)
    for r in ranked:
        rating = ratings.get(r.candidate.model)
        base = rating.value if rating else fit.a + fit.b * _strength(models, r.candidate.model)
        cost = QUANT_PENALTY[quant_family(r.candidate.quant)] * fit.b
        assert r.score == pytest.approx(base - cost)
        if rating:  # the reason cites the figure, its interval, the leaderboard, category and date
            assert f"{rating.value:.0f} (95 % interval {rating.low:.0f}-{rating.high:.0f})" in r.why
            assert rating.label in r.why and re.search(r"\d{4}-\d{2}-\d{2}", r.why)
        else:
            assert "no public rating" in r.why
    superseded = {m.name for m in catalog.load_catalog() if m.family in catalog.SUPERSEDED}
    assert not superseded & {r.candidate.model for r in ranked}  # planned by name, never recommended


def _strength(models: list, name: str) -> float:
    from planner.core.ranking import model_strength

    return model_strength(next(m for m in models if m.name == name).candidates[0].facts)


def test_use_case_picks_the_leaderboard_category() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "planner", "plan", "--gpu", "RTX 3090", "--ram", "32GB", *args]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)

    proc = run("--use-case", "code", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "coding category" in proc.stdout
    bad = run("--use-case", "poetry")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "planner: error: --use-case 'poetry': expected chat, code or reasoning"
    )


def test_the_recommended_plan_shows_its_score_and_the_alternatives_theirs() -> None:
    from planner.api import plan_request
    from planner.types.plan import PlanRequest

    hw = resolve_hardware(["RTX 3090"], "32GB", 8, None)
    plan = plan_request(PlanRequest(hardware=hw, offline=True, use_case="code"))
    assert plan.quality is not None and plan.quality.metric == "score"
    scores = [a.quality.value for a in plan.alternatives if a.quality and a.quality.metric == "score"]
    assert scores and all(plan.quality.value >= s for s in scores)  # the reason's ranking, checkable in the table
    assert "coding category" in plan.quality.source and re.search(r"\d{4}-\d{2}-\d{2}", plan.quality.source)
