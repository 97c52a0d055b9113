"""The offline model catalog (hardware_db/models/*.yaml): what the estimator needs when no header can be read.

Each YAML file holds `models:`, a list of entries: a GGUF repo, its architecture shape, and per quant the file
name(s), size and byte layout (per-layer, input, output and expert bytes). Every entry names its `origin` and every
quant its `basis`, so a plan built from the catalog can say where each number came from. Entries are seeded from
research notes (scripts/seed_catalog.py) and replaced by real headers with `planner catalog refresh REPO`.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from planner.errors import BadInput
from planner.types.ggml import LLAMA_MAX_LAYERS
from planner.types.model import ModelFacts

NO_FILES_NOTE = "sizes estimated, file names unknown until `planner catalog refresh` with hub access"
# Families whose own vendor released a successor in the same sizes: still planned by name, never recommended
# (Qwen1.5 -> Qwen2.5 (Sept 2024), Llama 2 -> Llama 3.x (Apr 2024)).
SUPERSEDED = frozenset({"Qwen1.5", "Llama 2"})


class QualityFigure(BaseModel):
    metric: str  # e.g. "perplexity (wikitext, llama.cpp)"
    quant: str
    value: float
    source: str


class CatalogQuant(BaseModel):
    quant: str  # llama.cpp file type name, upper case: Q4_K_M
    files: list[str] = Field(default_factory=list)  # empty: the repo's file names were not verified
    size_bytes: int = Field(gt=0)
    sha256: list[str] = Field(default_factory=list)
    layer_bytes: int | list[int]  # one value repeated for every layer, or one per layer
    input_bytes: int = Field(ge=0)
    output_bytes: int = Field(ge=0)
    layer_expert_bytes: int | list[int] = 0
    basis: str  # where size_bytes and the layout come from

    @model_validator(mode="after")
    def _upper(self) -> CatalogQuant:
        self.quant = self.quant.upper()
        return self


class CatalogShape(BaseModel):
    arch: str
    n_layer: int = Field(gt=0, le=LLAMA_MAX_LAYERS)  # per-layer lists are built from it: bounded as headers are
    n_embd: int = Field(gt=0)
    n_head: int = Field(gt=0)
    n_head_kv: int | list[int]
    head_dim_k: int = Field(gt=0)
    head_dim_v: int = Field(gt=0)
    n_ff: int | list[int] = 0
    n_vocab: int = Field(gt=0)
    context_length: int = Field(gt=0)
    sliding_window: int | None = None
    swa_period: int | None = None  # llama.cpp's pattern: layer il is SWA when il % period < period - 1
    n_expert: int = 0
    n_expert_used: int = 0
    expert_ff: int = 0
    kv_lora_rank: int | None = None
    tied_embeddings: bool = False
    n_params: int = 0


class CatalogModel(BaseModel):
    name: str  # e.g. Qwen1.5-14B-Chat
    aliases: list[str] = Field(default_factory=list)
    repo: str
    family: str
    origin: str  # "research: models.json, <note>" or "gguf headers read from <endpoint> on <date>"
    shape: CatalogShape
    shape_basis: str = ""
    quants: list[CatalogQuant]
    quality: list[QualityFigure] = Field(default_factory=list)
    recommend: bool = True  # offered by `planner plan` with no model
    # where the quants' file names come from (a listing of the repo's real files); empty: names unknown
    files_listed: str = ""
    # files the listing shows but the catalog can't plan (label -> file and why): named in errors, never offered
    not_offered: dict[str, str] = Field(default_factory=dict)
    file: str = ""  # the YAML file it came from (filled on load)

    @model_validator(mode="after")
    def _check(self) -> CatalogModel:
        if not self.quants:
            raise ValueError("has no quants")
        if not self.origin.strip():
            raise ValueError("has no origin")
        seen: set[str] = set()
        for q in self.quants:
            if q.quant in seen:
                raise ValueError(f"lists quant {q.quant} twice")
            seen.add(q.quant)
            for field_name in ("layer_bytes", "layer_expert_bytes"):
                value = getattr(q, field_name)
                if isinstance(value, list) and len(value) != self.shape.n_layer:
                    raise ValueError(
                        f"{q.quant}: {field_name} has {len(value)} entries for {self.shape.n_layer} layers"
                    )
        return self

    def quant(self, name: str) -> CatalogQuant:
        wanted = name.upper()
        for q in self.quants:
            if q.quant == wanted:
                return q
        raise BadInput(self.missing_quant_message(name))

    def missing_quant_message(self, name: str) -> str:
        """One line: the quants this entry offers, and why a file the repo does have is not among them."""
        available = ", ".join(q.quant for q in self.quants)
        why = self.not_offered.get(name.upper())
        if why:
            return (
                f"{self.repo} has {name.upper()} ({why}), which the offline catalog can't plan; "
                f"offline choices: {available} (with hub access planner reads the repo itself)"
            )
        if not self.files_listed:
            return f"{self.repo} has no {name} in the offline catalog ({NO_FILES_NOTE}: {available})"
        return f"{self.repo} has no {name} (quants it has: {available})"

    def lookup_names(self) -> set[str]:
        """Every name this model is found by, lower case."""
        repo_name = self.repo.split("/")[-1]
        names = {self.name, self.repo, repo_name, *self.aliases}
        if repo_name.lower().endswith("-gguf"):
            names.add(repo_name[: -len("-gguf")])
        return {n.lower() for n in names}


def catalog_dir() -> Path:
    from planner.data.paths import hardware_db

    return hardware_db() / "models"


def load_file(path: Path) -> list[CatalogModel]:
    from planner.data.loader import load_yaml

    doc = load_yaml(path, "catalog file")  # parsed once, then served from a JSON cache: plan must start fast
    entries = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise BadInput(f"catalog file {path} has no `models:` list")
    models = []
    for i, entry in enumerate(entries):
        label = entry.get("name") if isinstance(entry, dict) else None
        try:
            model = CatalogModel.model_validate({**(entry if isinstance(entry, dict) else {}), "file": path.name})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise BadInput(
                f"catalog file {path}, entry {label or i}: {where + ': ' if where else ''}{err['msg']}"
            ) from None
        models.append(model)
    return models


@cache
def _load_dir(folder: str) -> tuple[CatalogModel, ...]:
    models: list[CatalogModel] = []
    repos: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        for model in load_file(path):
            key = model.repo.lower()
            if key in repos:
                raise BadInput(f"catalog file {path}: {model.repo} is already listed in {repos[key]}")
            repos[key] = path.name
            models.append(model)
    return tuple(models)


def load_catalog(folder: Path | None = None) -> list[CatalogModel]:
    """Every catalog model, validated (cached per folder; a bad entry is one error naming file and entry)."""
    return list(_load_dir(str(folder or catalog_dir())))


def clear_cache() -> None:
    _load_dir.cache_clear()


def find(alias_or_repo: str, folder: Path | None = None) -> CatalogModel | None:
    """The model known by this alias, name or repo (case-insensitive; `hf.co/` and `:quant` are ignored)."""
    key = alias_or_repo.strip().lower()
    for prefix in ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf.co/"):
        key = key.removeprefix(prefix)
    key = key.split(":")[0].rstrip("/")
    for model in load_catalog(folder):
        if key in model.lookup_names():
            return model
    return None


def closest_names(query: str, n: int = 3, folder: Path | None = None) -> list[str]:
    """Catalog names that look most like `query`, best first (for "did you mean"), as gpus.closest_names does:
    difflib's ratio plus a bonus for a shared beginning, so "lama-3.3-70b" finds Llama 3.3 before Llama 3.1."""
    import difflib

    full = query.strip().lower().split(":")[0].rstrip("/")
    if not full:
        return []
    # "Qwen/Qwen3-32B-GGUF" should find the entry named Qwen3-32B whatever org holds its files
    short = full.rsplit("/", 1)[-1]
    wanted = {full, short, short.removesuffix("-gguf")} - {""}

    def score(key: str) -> float:
        return max(
            difflib.SequenceMatcher(None, w, key).ratio() + 0.5 * len(os.path.commonprefix([w, key])) / len(w)
            for w in wanted
        )

    best: dict[str, float] = {}
    for model in load_catalog(folder):
        for key in model.lookup_names():
            best[model.name] = max(best.get(model.name, 0.0), score(key))
    ranked = sorted((name for name, s in best.items() if s >= 0.6), key=lambda name: -best[name])
    return ranked[:n]


def did_you_mean(query: str, folder: Path | None = None) -> str:
    close = closest_names(query, folder=folder)
    return f"; did you mean {', '.join(close)}?" if close else ""


def recommendable(folder: Path | None = None) -> list[CatalogModel]:
    """Models `planner plan` may offer when the user names none (the solver ranks them)."""
    return [m for m in load_catalog(folder) if m.recommend]


def _per_layer(value: int | list[int], n_layer: int) -> list[int]:
    return list(value) if isinstance(value, list) else [value] * n_layer


def swa_layers(shape: CatalogShape) -> list[bool]:
    """llama.cpp's set_swa_pattern(period): layer il uses the sliding window when il % period < period - 1."""
    if not shape.swa_period or not shape.sliding_window:
        return []
    p = shape.swa_period
    return [il % p < p - 1 for il in range(shape.n_layer)]


def facts_from_catalog(model: CatalogModel, quant: str, *, source: str = "") -> ModelFacts:
    """ModelFacts for one quant of a catalog model (origin="catalog": no tensor list, layout from the entry)."""
    q = model.quant(quant)
    s = model.shape
    return ModelFacts(
        source=source or model.repo,
        repo=model.repo,
        file=q.files[0] if q.files else "",
        files=list(q.files),
        quant=q.quant,
        arch=s.arch,
        name=model.name,
        n_layer=s.n_layer,
        n_embd=s.n_embd,
        n_head=s.n_head,
        n_head_kv=s.n_head_kv,
        head_dim_k=s.head_dim_k,
        head_dim_v=s.head_dim_v,
        n_ff=s.n_ff,
        n_vocab=s.n_vocab,
        context_length=s.context_length,
        sliding_window=s.sliding_window if s.swa_period else None,
        swa_layers=swa_layers(s),
        n_expert=s.n_expert,
        n_expert_used=s.n_expert_used,
        expert_ff=s.expert_ff,
        kv_lora_rank=s.kv_lora_rank,
        n_params=s.n_params,
        size_bytes=q.size_bytes,
        layer_bytes=_per_layer(q.layer_bytes, s.n_layer),
        layer_expert_bytes=_per_layer(q.layer_expert_bytes, s.n_layer),
        input_bytes=q.input_bytes,
        output_bytes=q.output_bytes,
        tied_embeddings=s.tied_embeddings,
        origin="catalog",
    )


# --- writing (planner catalog refresh, scripts/seed_catalog.py) ---------------------------------------------


def _compact(value: Any) -> Any:
    """Collapse per-layer lists whose entries are all equal to one value (smaller, easier to read YAML)."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value) and len(set(value)) == 1:
        return value[0]
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def model_to_yaml_dict(model: CatalogModel) -> dict[str, Any]:
    data = model.model_dump(exclude={"file"}, exclude_defaults=True)
    data = {"name": model.name, "repo": model.repo, **data}  # required fields first, even when defaulted
    data["shape"] = _compact(data["shape"])
    data["quants"] = [_compact(q) for q in data["quants"]]
    return data


def write_catalog_file(path: Path, models: list[CatalogModel], header: str = "") -> None:
    """Write a catalog YAML atomically (temp file in the same folder, then os.replace)."""
    import yaml

    text = yaml.safe_dump(
        {"models": [model_to_yaml_dict(m) for m in models]}, sort_keys=False, width=110, allow_unicode=True
    )
    if header:
        text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + text
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    clear_cache()


# --- results of `planner catalog list/refresh` (--json prints them) -----------------------------------------
class CatalogFile(BaseModel):
    quant: str
    file: str  # the file to give llama-server (the first shard of a split set)
    shards: list[str]  # every file to download, in order
    size_bytes: int
    source: str  # where the size (and the layout) come from


class CatalogRow(BaseModel):
    name: str
    aliases: list[str]
    repo: str
    family: str
    arch: str
    n_params: int
    quants: list[str]
    files: list[CatalogFile]  # the quants whose files are known, by exact name
    files_listed: str  # the listing the names come from; empty: unknown
    note: str = ""  # e.g. NO_FILES_NOTE
    smallest_bytes: int
    largest_bytes: int
    recommend: bool
    origin: str
    file: str


class CatalogListing(BaseModel):
    folder: str
    models: list[CatalogRow]


class RefreshResult(BaseModel):
    repo: str
    name: str
    file: str
    revision: str | None
    quants_read: list[str]
    header_bytes_transferred: int
    created: bool  # False when an existing entry was updated
