"""`planner catalog refresh`: rebuild a catalog entry from a repo's real GGUF headers (a few MB of ranged reads,
never the weights), and the catalog listing `planner catalog list` shows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from planner.data import catalog
from planner.data.catalog import (
    NO_FILES_NOTE,
    CatalogFile,
    CatalogListing,
    CatalogModel,
    CatalogRow,
    RefreshResult,
    catalog_dir,
    load_catalog,
)
from planner.errors import BadInput, EnvironmentProblem, HubUnreachable
from planner.models.sources import QuantChoice, facts_for, hub_endpoint, resolve_model
from planner.types.model import ModelFacts


def check_catalog_dir(folder: Path | None, *, must_exist: bool = True) -> Path | None:
    """--catalog-dir as a folder: to list, one that exists (a typo would list an empty catalog); to refresh into,
    one that exists or can be made (refresh creates it)."""
    if folder is None:
        return None
    folder = folder.expanduser()
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"--catalog-dir {folder}: not a folder")
    if must_exist and not folder.exists():
        raise BadInput(f"--catalog-dir {folder}: no such folder")
    return folder


def list_catalog(folder: Path | None) -> CatalogListing:
    folder = check_catalog_dir(folder)

    rows = [_row(m) for m in load_catalog(folder)]
    return CatalogListing(folder=str(folder or catalog_dir()), models=rows)


def _no_files_note(m: CatalogModel) -> str:
    if not all(q.basis.startswith("published") for q in m.quants):
        return NO_FILES_NOTE  # some (usually all) sizes are estimates
    return "sizes published, file names unknown until `planner catalog refresh` with hub access"


def _row(m: CatalogModel) -> CatalogRow:
    files = [
        CatalogFile(quant=q.quant, file=q.files[0], shards=list(q.files), size_bytes=q.size_bytes, source=q.basis)
        for q in m.quants
        if q.files
    ]
    return CatalogRow(
        name=m.name,
        aliases=sorted(m.lookup_names() - {m.repo.lower()}),
        repo=m.repo,
        family=m.family,
        arch=m.shape.arch,
        n_params=m.shape.n_params,
        quants=[q.quant for q in m.quants],
        files=files,
        files_listed=m.files_listed,
        note="" if files else _no_files_note(m),
        smallest_bytes=min(q.size_bytes for q in m.quants),
        largest_bytes=max(q.size_bytes for q in m.quants),
        recommend=m.recommend,
        origin=m.origin,
        file=m.file,
    )


def refresh_entry(repo: str, quants: list[str] | None, folder: Path | None) -> RefreshResult:
    """Read the real headers of `repo` (all quants, or those named) and write its catalog entry atomically."""
    folder = check_catalog_dir(folder, must_exist=False) or catalog.catalog_dir()
    try:
        resolved = resolve_model(repo)
    except HubUnreachable as exc:
        raise EnvironmentProblem(f"{exc.message}: catalog refresh needs the hub") from None
    if resolved.kind == "catalog":  # the hub could not be asked (offline): the catalog answered instead
        why = resolved.notices[0].split(": using the offline catalog")[0] if resolved.notices else "no hub"
        raise EnvironmentProblem(f"{why}: catalog refresh reads {resolved.repo}'s headers from the hub")
    if resolved.kind != "repo" or resolved.repo is None:
        raise BadInput(f"catalog refresh needs a Hugging Face repo, not {repo!r}")
    choices = [resolved.choice(q) for q in quants] if quants else resolved.candidates
    facts_list = []
    for choice in choices:
        facts = facts_for(resolved, choice.quant)
        if facts.origin != "gguf":  # facts_for fell back to the catalog: the hub went away mid-way
            raise EnvironmentProblem(f"can't reach {hub_endpoint()}: catalog refresh needs the hub")
        facts_list.append((choice, facts))

    first = facts_list[0][1]
    _check_one_model(resolved.repo, facts_list)
    shape = catalog.CatalogShape(
        arch=first.arch,
        n_layer=first.n_layer,
        n_embd=first.n_embd,
        n_head=first.n_head,
        n_head_kv=first.n_head_kv,
        head_dim_k=first.head_dim_k,
        head_dim_v=first.head_dim_v,
        n_ff=first.n_ff,
        n_vocab=first.n_vocab,
        context_length=first.context_length,
        sliding_window=first.sliding_window,
        swa_period=_swa_period(first.swa_layers),
        n_expert=first.n_expert,
        n_expert_used=first.n_expert_used,
        expert_ff=first.expert_ff,
        kv_lora_rank=first.kv_lora_rank,
        tied_embeddings=first.tied_embeddings,
        n_params=first.n_params,
    )
    today = dt.date.today().isoformat()
    where = f"{resolved.endpoint} at revision {resolved.revision or 'main'}"
    new_quants = [
        catalog.CatalogQuant(
            quant=facts.quant if facts.quant != "unknown" else choice.quant,
            files=choice.paths,
            size_bytes=facts.size_bytes,
            sha256=[s for s in choice.sha256 if s],
            layer_bytes=facts.layer_bytes,
            input_bytes=facts.input_bytes,
            output_bytes=facts.output_bytes,
            layer_expert_bytes=facts.layer_expert_bytes if any(facts.layer_expert_bytes) else 0,
            basis=f"gguf header read from {where} on {today} (tensor data bytes; layout from the tensor table)",
        )
        for choice, facts in facts_list
    ]

    existing = catalog.find(resolved.repo, folder)
    path = folder / (existing.file if existing else f"{_slug(first.arch)}.yaml")
    others = [m for m in (catalog.load_file(path) if path.exists() else []) if m.repo.lower() != resolved.repo.lower()]
    kept = []
    if existing and existing.shape.n_layer == shape.n_layer:  # keep quants not re-read (they state their basis)
        refreshed = {q.quant for q in new_quants}
        kept = [q for q in existing.quants if q.quant not in refreshed]
    name = resolved.repo.split("/")[-1]
    read = {q.quant for q in new_quants}  # now planned from real headers: no longer "listed but not offered"
    entry = catalog.CatalogModel(
        name=existing.name if existing else (name[: -len("-GGUF")] if name.upper().endswith("-GGUF") else name),
        aliases=existing.aliases if existing else [],
        repo=resolved.repo,
        family=existing.family if existing else (first.name or first.arch),
        origin=f"gguf headers read from {where} on {today} (planner catalog refresh)",
        shape=shape,
        shape_basis=f"gguf header metadata ({first.file})",
        quants=sorted([*kept, *new_quants], key=lambda q: q.size_bytes),
        quality=existing.quality if existing else [],
        # refreshed, its files are known by name: offered unless its vendor superseded the family
        recommend=(existing.family if existing else "") not in catalog.SUPERSEDED,
        files_listed=f"hub listing of {where} on {today}",
        not_offered={k: v for k, v in (existing.not_offered if existing else {}).items() if k not in read},
    )
    catalog.write_catalog_file(path, [*others, entry], header=_header_of(path))
    return RefreshResult(
        repo=resolved.repo,
        name=entry.name,
        file=str(path),
        revision=resolved.revision,
        quants_read=[q.quant for q in new_quants],
        header_bytes_transferred=sum(f.header_bytes_read or 0 for _, f in facts_list),
        created=existing is None,
    )


# What every quant of one model shares: a catalog entry holds one shape for all of its quants.
_SHAPE_FIELDS = ("arch", "n_layer", "n_embd", "n_vocab")


def _check_one_model(repo: str, facts_list: list[tuple[QuantChoice, ModelFacts]]) -> None:
    """Quants whose headers describe different models (a repo holding a 7B and a 13B) cannot share one entry:
    their per-layer byte lists would not match the entry's layer count (an internal error before)."""
    first_choice, first = facts_list[0]
    for choice, facts in facts_list[1:]:
        for field in _SHAPE_FIELDS:
            mine, theirs = getattr(first, field), getattr(facts, field)
            if mine != theirs:
                raise BadInput(
                    f"{repo}: {first_choice.quant} and {choice.quant} are different models ({field} {mine} vs "
                    f"{theirs}); a catalog entry holds one model: refresh with --quant for the quants of one of them"
                )


def _swa_period(swa: list[bool]) -> int | None:
    """The llama.cpp period that reproduces this per-layer SWA pattern, if one does."""
    if not any(swa):
        return None
    for period in range(2, len(swa) + 1):
        if all(flag == (il % period < period - 1) for il, flag in enumerate(swa)):
            return period
    return None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c == "." else "-" for c in text.lower()).strip("-") or "models"


def _header_of(path: Path) -> str:
    """The leading comment block of an existing catalog file, kept when it is rewritten."""
    if not path.exists():
        return "planner offline model catalog: entries written by `planner catalog refresh` from real GGUF headers."
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return "\n".join(lines)
