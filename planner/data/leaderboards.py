"""Public model-quality figures (hardware_db/quality/leaderboards/*.yaml), keyed to catalog model names.

Each file names its sources (url with the commit read, date, metric, what it covers); `ratings_for` turns the
figures for one use case into core Ratings, so the recommendation ranks by them (core takes them as data).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field

from planner.core.recommend import Rating
from planner.errors import BadInput

USE_CASES = ("chat", "code", "reasoning")


class Figure(BaseModel):
    rating: float
    low: float
    high: float


class ArenaEntry(BaseModel):
    key: str  # the model's name on LMArena
    chat: Figure | None = None
    code: Figure | None = None
    reasoning: Figure | None = None


class AiderEntry(BaseModel):
    model: str
    pass_rate_2: float
    edit_format: str
    date: str


class ModelFigures(BaseModel):
    lmarena: ArenaEntry | None = None
    aider_polyglot: AiderEntry | None = None


class Source(BaseModel):
    name: str
    url: str
    date: str
    metric: str
    covers: str
    categories: dict[str, str] = Field(default_factory=dict)


class Leaderboards(BaseModel):
    sources: dict[str, Source]
    models: dict[str, ModelFigures]


@cache
def load_leaderboards(folder: Path | None = None) -> tuple[Leaderboards, ...]:
    from planner.data.loader import load_yaml
    from planner.data.paths import hardware_db

    folder = folder or hardware_db() / "quality" / "leaderboards"
    return tuple(Leaderboards.model_validate(load_yaml(p)) for p in sorted(folder.glob("*.yaml")))


def ratings_for(use_case: str, folder: Path | None = None) -> dict[str, Rating]:
    """Catalog name -> its LMArena rating in the category that matches the use case."""
    if use_case not in USE_CASES:
        raise BadInput(f"--use-case {use_case!r}: expected {', '.join(USE_CASES)}")
    out: dict[str, Rating] = {}
    for board in load_leaderboards(folder):
        arena = board.sources.get("lmarena")
        if arena is None:
            continue
        category = arena.categories.get(use_case, use_case)
        label = f"{arena.name} {arena.date}, {category} category"  # the date survives the console's trimming
        for name, figures in board.models.items():
            figure = getattr(figures.lmarena, use_case, None) if figures.lmarena else None
            if figure is not None:
                out[name] = Rating(figure.rating, figure.low, figure.high, label)
    return out
