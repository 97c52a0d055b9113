"""Where the solver's candidates come from: a named model (hub, local path, catalog) or the catalog's picks.

This is the I/O edge of planning: it lists files, reads the headers of every file that could fit (remote headers
in parallel: a few MB of ranged reads each) or falls back to the offline catalog, and hands the pure core plain
Candidates whose facts are already known. A network error surfaces here, never inside the search.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from planner.core.capacity import margins_for, reachable_bytes
from planner.core.ranking import quant_rank
from planner.core.recommend import ModelOption
from planner.core.search import Candidate, PeerQuality
from planner.data.catalog import CatalogModel, CatalogQuant, facts_from_catalog, find, load_catalog, recommendable
from planner.errors import BadInput
from planner.models.sources import QuantChoice, ResolvedModel, facts_for, resolve_model
from planner.types.hardware import Hardware
from planner.types.model import ModelFacts, ModelFile
from planner.types.plan import Quality

HEADER_READERS = 8  # parallel remote header reads: each is a few round trips, the hub serves them concurrently


def _catalog_quality(model: CatalogModel, quant: str) -> Quality | None:
    """The model's own published perplexity for this quant, else the file type's measured loss (quants.yaml) on
    the published model nearest in size: every catalog quant, low-bit ones included, carries a cited figure."""
    from planner.data.quants import measured_loss

    for fig in model.quality:
        if fig.quant.upper() == quant.upper():
            return Quality(metric="perplexity", value=fig.value, source=fig.source, note=fig.metric)
    if model.quality:  # the model's own table has no figure for it: no other unit beside that table's
        return None
    return measured_loss(quant, model.shape.n_params)


def peers_of(entry: CatalogModel | None, catalog: list[CatalogModel]) -> tuple[PeerQuality, ...]:
    """Smaller models of the same family with a published full-precision perplexity (F16, else Q8_0)."""
    if entry is None:
        return ()
    peers = []
    for sibling in catalog:
        if sibling.family != entry.family or sibling.name == entry.name:
            continue
        if sibling.shape.n_params >= entry.shape.n_params:
            continue
        figures = {f.quant.upper(): f for f in sibling.quality}
        best = figures.get("F16") or figures.get("Q8_0")
        if best is not None:
            peers.append(PeerQuality(sibling.name, sibling.shape.n_params, best.quant, best.value, best.source))
    return tuple(peers)


def _hardware_allows(quant: str, compute_capabilities: list[tuple[int, int]]) -> bool:
    """BF16 weights need compute capability >= 8.0 on NVIDIA (no bf16 math below Ampere)."""
    return not (quant.upper() == "BF16" and any(cc < (8, 0) for cc in compute_capabilities))


def _ccs(hw: Hardware) -> list[tuple[int, int]]:
    return [cc for g in hw.gpus if (cc := g.cc_tuple())]


def _catalog_files(q: CatalogQuant) -> tuple[ModelFile, ...]:
    """A catalog quant's files; the sha256 list, when the entry records one per file, goes with them."""
    checksums = q.sha256 if len(q.sha256) == len(q.files) else [None] * len(q.files)
    size = q.size_bytes if len(q.files) == 1 else 0  # the entry records the total, not each shard's size
    return tuple(ModelFile(path=f, size_bytes=size, sha256=s) for f, s in zip(q.files, checksums))


def catalog_candidates(
    model: CatalogModel, hw: Hardware, *, only_quant: str | None = None, peers: tuple[PeerQuality, ...] = ()
) -> list[Candidate]:
    """The catalog model's files, best quant first, with facts from the catalog entry (no I/O beyond it)."""
    out = []
    ccs = _ccs(hw)
    for q in sorted(model.quants, key=lambda q: quant_rank(q.quant)):
        if only_quant and q.quant.upper() != only_quant.upper():
            continue
        if not only_quant and not _hardware_allows(q.quant, ccs):
            continue
        out.append(
            Candidate(
                model=model.name,
                quant=q.quant,
                size_bytes=q.size_bytes,
                loaded_facts=facts_from_catalog(model, q.quant),
                file=q.files[0] if q.files else None,
                quality=_catalog_quality(model, q.quant),
                peers=peers,
                files=_catalog_files(q),
            )
        )
    if only_quant and not out:
        model.quant(only_quant)  # raises BadInput listing what is available
    return out


def candidates_for(
    source: str, hw: Hardware, *, quant: str | None, offline: bool, margin_bytes: int | None = None
) -> tuple[list[Candidate], list[str]]:
    """Candidates for a model the user named, each with its facts read, and notices (e.g. 'offline: catalog')."""
    resolved = resolve_model(source, offline=offline, quant=quant)
    wanted = quant or resolved.quant
    catalog_entry = (
        find(resolved.catalog_name or resolved.repo or "") if (resolved.catalog_name or resolved.repo) else None
    )
    options = sorted(resolved.candidates, key=lambda c: quant_rank(c.quant))
    if wanted:
        options = [o for o in options if o.quant.upper() == wanted.upper()]
        if not options:
            have = ", ".join(c.quant for c in resolved.candidates)
            raise BadInput(f"{resolved.source} has no {wanted} file (available: {have})")
    else:
        options = [o for o in options if _hardware_allows(o.quant, _ccs(hw))]
    facts = _read_facts(resolved, options, reachable_bytes(hw, margins_for(hw, margin_bytes)))
    peers = peers_of(catalog_entry, load_catalog()) if catalog_entry else ()
    name = (catalog_entry.name if catalog_entry else None) or resolved.repo
    out = []
    for option in options:
        paths = option.paths
        file = _path_of(resolved, paths[0]) if paths else None
        out.append(
            Candidate(
                model=name or Path(paths[0]).stem,
                quant=option.quant,
                size_bytes=option.size_bytes,
                loaded_facts=facts.get(option.quant),
                file=file,
                quality=_catalog_quality(catalog_entry, option.quant) if catalog_entry else None,
                peers=peers,
                files=tuple(
                    ModelFile(path=_path_of(resolved, f.path), size_bytes=f.size, sha256=f.sha256) for f in option.files
                ),
                revision=resolved.revision,
            )
        )
    return out, resolved.notices


def _path_of(resolved: ResolvedModel, path: str) -> str:
    """A local file by its full path; a hub file by its path in the repo."""
    return str(Path(resolved.local_dir or ".") / path) if resolved.kind == "local" else path


def _read_facts(resolved: ResolvedModel, options: list[QuantChoice], reach: int) -> dict[str, ModelFacts]:
    """Facts for every option a plan could use: all that fit in GPU + RAM, and the smallest (the nothing-fits
    answer needs its layout). Remote headers are read in parallel; files out of reach are never read."""
    if not options:
        return {}
    smallest = min(options, key=lambda o: o.size_bytes)
    needed = [o for o in options if o.size_bytes <= reach or o is smallest]
    if resolved.kind != "repo" or len(needed) == 1:
        return {o.quant: facts_for(resolved, o.quant) for o in needed}
    with ThreadPoolExecutor(max_workers=min(HEADER_READERS, len(needed))) as pool:
        read = list(pool.map(lambda o: facts_for(resolved, o.quant), needed))
    return {o.quant: f for o, f in zip(needed, read)}


def recommended_models(hw: Hardware, use_case: str = "chat") -> list[ModelOption]:
    """Every recommendable catalog model with its candidates (best quant first), facts from the catalog, and its
    public rating for the use case (hardware_db/quality/leaderboards) where a leaderboard has one."""
    from planner.data.leaderboards import ratings_for

    catalog = load_catalog()
    ratings = ratings_for(use_case)
    return [
        ModelOption(
            m.name, m.shape.n_params, catalog_candidates(m, hw, peers=peers_of(m, catalog)), ratings.get(m.name)
        )
        for m in recommendable()
    ]
