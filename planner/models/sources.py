"""Every way a user names a model, behind one interface: resolve it to candidate files, then read the facts.

    owner/repo                    a Hugging Face repo: every GGUF quant in it (sizes, shards, sha256 from the hub)
    owner/repo:Q4_K_M             one quant of it (case-insensitive)
    hf.co/owner/repo[:quant]      the same, as Ollama and llama.cpp's -hf write it
    https://huggingface.co/owner/repo[/blob/main/file.gguf]
    ./model.gguf, ./dir/          a local file (one shard of a split set brings all of them) or a folder
    qwen1.5-14b-chat              a catalog name (hardware_db/models): the repo it names

`resolve_model` lists candidates cheaply (one API call for a repo, a stat for local files); `facts_for` reads the
real GGUF header of the chosen quant only (a few MB through ranged HTTP reads for a remote file), or falls back to
the offline catalog when the hub can't be reached. HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE and HF_HOME are read at
call time, so tests and users can change them without re-importing huggingface_hub.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from planner import config
from planner.errors import BadInput, EnvironmentProblem, HubUnreachable
from planner.models.hub_errors import hub_error

if TYPE_CHECKING:
    from planner.data.catalog import CatalogModel
    from planner.types.model import ModelFacts

DEFAULT_ENDPOINT = "https://huggingface.co"
HEADER_BLOCK_BYTES = 1 << 20  # remote reads come in blocks this big: a header takes a few of them
API_TIMEOUT_S = 15.0
_SPLIT_RE = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_URL_PREFIXES = ("https://", "http://", "hf://")
_HOST_PREFIXES = ("huggingface.co/", "hf.co/", "www.huggingface.co/")


# --- what a source resolves to ----------------------------------------------------------------------------------


class RepoFile(BaseModel):
    path: str  # path in the repo (or the local path)
    size: int
    sha256: str | None = None  # LFS sha256 published by the hub (None for local files and plain git blobs)
    shard: int | None = None  # 1-based part number of a split set
    n_shards: int | None = None


class QuantChoice(BaseModel):
    """One downloadable model in a repo: a quant and its file(s)."""

    quant: str  # llama.cpp file type name as the filename says it (Q4_K_M), or the file's stem if it says none
    files: list[RepoFile]
    size_bytes: int

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    @property
    def sha256(self) -> list[str | None]:
        return [f.sha256 for f in self.files]


class RepoListing(BaseModel):
    repo: str
    revision: str | None = None  # the commit the listing came from
    quants: list[QuantChoice] = Field(default_factory=list)  # smallest first
    mmproj: list[RepoFile] = Field(default_factory=list)  # vision projectors: not models, but they need memory
    skipped: list[str] = Field(default_factory=list)  # imatrix and shard sets with parts missing

    def choice(self, quant: str) -> QuantChoice:
        return pick_quant(self.quants, quant, where=self.repo)


class ResolvedModel(BaseModel):
    source: str  # what the user typed
    kind: Literal["repo", "local", "catalog"]
    repo: str | None = None
    revision: str | None = None
    endpoint: str | None = None
    local_dir: str | None = None  # for kind == "local": the folder holding the files
    candidates: list[QuantChoice] = Field(default_factory=list)  # smallest first
    quant: str | None = None  # chosen by the user (repo:quant, a URL to one file, --quant, or a single file)
    mmproj: RepoFile | None = None
    catalog_name: str | None = None  # the catalog entry matching this model, when there is one
    notices: list[str] = Field(default_factory=list)  # one-line warnings for the user (e.g. used the catalog)

    def choice(self, quant: str | None = None) -> QuantChoice:
        wanted = quant or self.quant
        if wanted is None:
            if len(self.candidates) == 1:
                return self.candidates[0]
            options = ", ".join(c.quant for c in self.candidates)
            raise BadInput(f"{self.source} has several quants; choose one with {self.source}:QUANT ({options})")
        return pick_quant(self.candidates, wanted, where=self.repo or self.source)


def pick_quant(candidates: list[QuantChoice], quant: str, *, where: str) -> QuantChoice:
    wanted = quant.strip().upper()
    for c in candidates:
        # Stripped on both sides: a label taken from a file's stem keeps its spaces ("my model .gguf" gives
        # "my model "), and comparing it with the stripped request made such a file impossible to plan.
        if c.quant.strip().upper() == wanted:
            return c
    options = ", ".join(c.quant for c in candidates) or "none"
    raise BadInput(f"{where} has no quant {quant} (available: {options})")


# --- environment -------------------------------------------------------------------------------------------------


hub_endpoint = config.hub_endpoint
hub_token = config.hub_token
hub_offline = config.hub_offline


def check_repo_id(repo: str) -> None:
    """Refuse, before any request, a repo id the hub itself would refuse (huggingface_hub's own rules: at most 96
    characters per part, no '--' or '..', no leading or trailing '-' or '.'): planner's looser pattern let
    `owner/..` and `a--b/c` through to an internal error."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError:
        shown = repo if len(repo) <= 120 else repo[:117] + "..."
        raise BadInput(
            f"{shown!r} is not a valid Hugging Face repo id (owner/name: letters, digits, '-', '_', '.'; "
            "no '--' or '..'; at most 96 characters each)"
        ) from None


# --- file names --------------------------------------------------------------------------------------------------


def _is_mmproj(name: str) -> bool:
    return "mmproj" in Path(name).name.lower()


def _is_imatrix(name: str) -> bool:
    return "imatrix" in Path(name).name.lower()


def quant_label(name: str) -> str:
    """The quant a GGUF file name states (Q4_K_M), or its stem when it states none."""
    from planner.data.quants import quant_from_filename

    stem_name = Path(name).name
    m = _SPLIT_RE.match(stem_name)
    base = f"{m.group('stem')}.gguf" if m else stem_name
    return quant_from_filename(base) or Path(base).stem


def group_ggufs(files: list[RepoFile], *, where: str) -> tuple[list[QuantChoice], list[RepoFile], list[str]]:
    """Split .gguf files into model candidates (shards grouped), mmproj files and skipped names."""
    singles: list[RepoFile] = []
    sets: dict[tuple[str, int], dict[int, RepoFile]] = {}
    mmproj: list[RepoFile] = []
    skipped: list[str] = []
    for f in files:
        if not f.path.lower().endswith(".gguf"):
            continue
        if _is_mmproj(f.path):
            mmproj.append(f)
        elif _is_imatrix(f.path):
            skipped.append(f.path)
        elif m := _SPLIT_RE.match(Path(f.path).name):
            count, no = int(m.group("count")), int(m.group("no"))
            stem = str(Path(f.path).parent / m.group("stem"))
            sets.setdefault((stem, count), {})[no] = f.model_copy(update={"shard": no, "n_shards": count})
        else:
            singles.append(f)
    choices = [QuantChoice(quant=quant_label(f.path), files=[f], size_bytes=f.size) for f in singles]
    for (stem, count), parts in sets.items():
        if sorted(parts) != list(range(1, count + 1)):
            skipped.append(f"{Path(stem).name}: {len(parts)} of {count} parts")
            continue
        ordered = [parts[i] for i in range(1, count + 1)]
        label = quant_label(ordered[0].path)
        choices.append(QuantChoice(quant=label, files=ordered, size_bytes=sum(p.size for p in ordered)))
    # Two files can state the same quant (e.g. in sub-folders): keep the first at the shallowest path.
    choices.sort(key=lambda c: (c.quant.upper(), c.files[0].path.count("/"), c.files[0].path))
    unique: dict[str, QuantChoice] = {}
    for c in choices:
        unique.setdefault(c.quant.upper(), c)
    ordered_choices = sorted(unique.values(), key=lambda c: (c.size_bytes, c.quant))
    return ordered_choices, mmproj, skipped


# --- the hub -----------------------------------------------------------------------------------------------------


def _api(endpoint: str, token: str | None) -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token)


def _hub_error(exc: Exception, repo: str, endpoint: str) -> Exception:
    """planner's one-line error for a hub failure (planner.models.hub_errors), or `exc` itself if it is none."""
    return hub_error(exc, repo, endpoint) or exc


def list_repo_ggufs(repo: str, token: str | None = None, *, revision: str | None = None) -> RepoListing:
    """List a repo's GGUF files from the hub API in one request: sizes and LFS sha256, shards grouped."""
    check_repo_id(repo)
    endpoint = hub_endpoint()
    if hub_offline():
        raise HubUnreachable(f"HF_HUB_OFFLINE is set: not contacting {endpoint}")
    try:
        info = _api(endpoint, token or hub_token()).model_info(
            repo, revision=revision, files_metadata=True, timeout=API_TIMEOUT_S
        )
    except Exception as exc:  # noqa: BLE001 - mapped to planner's errors, anything else re-raised
        raise _hub_error(exc, repo, endpoint) from None
    files = [
        RepoFile(path=s.rfilename, size=s.size or 0, sha256=s.lfs.sha256 if s.lfs else None)
        for s in info.siblings or []
    ]
    quants, mmproj, skipped = group_ggufs(files, where=repo)
    if not quants:
        what = "only a vision projector" if mmproj else "no GGUF files"
        raise BadInput(f"{repo!r} on {endpoint} has {what}: planner runs GGUF models (try a '-GGUF' repo)")
    return RepoListing(repo=repo, revision=info.sha, quants=quants, mmproj=mmproj, skipped=skipped)


class _CountingFetcher:
    """Wraps an fsspec cache's fetcher to count the bytes that really came over the wire."""

    def __init__(self, fetch: Any) -> None:
        self.fetch = fetch
        self.bytes = 0

    def __call__(self, start: int, end: int) -> bytes:
        data: bytes = self.fetch(start, end)
        self.bytes += len(data)
        return data


class _RemoteReadFailed(Exception):
    """Carries an HTTP/network failure past the header parser (which reports OSError as a bad file)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _RemoteStream:
    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.size = fh.size

    def read(self, n: int = -1) -> bytes:
        try:
            data: bytes = self._fh.read(n)
            return data
        except Exception as exc:  # noqa: BLE001 - sorted out by read_remote_header
            raise _RemoteReadFailed(exc) from exc


def read_remote_header(repo: str, path: str, *, size: int, revision: str | None = None) -> tuple[Any, int]:
    """Read one remote GGUF's header through HfFileSystem ranged reads: (GgufHeader, bytes transferred)."""
    from huggingface_hub import HfFileSystem

    from planner.models.gguf_header import read_header

    check_repo_id(repo)
    endpoint = hub_endpoint()
    fs = HfFileSystem(endpoint=endpoint, token=hub_token(), skip_instance_cache=True)
    rev = f"@{revision}" if revision else ""
    try:
        with fs.open(f"{repo}{rev}/{path}", "rb", block_size=HEADER_BLOCK_BYTES, cache_type="readahead") as fh:
            counter = _CountingFetcher(fh.cache.fetcher)
            fh.cache.fetcher = counter
            header = read_header(_RemoteStream(fh), file_size=size, name=Path(path).name)
    except _RemoteReadFailed as exc:
        raise _hub_error(exc.cause, repo, endpoint) from None
    except (BadInput, EnvironmentProblem):
        raise
    except FileNotFoundError:
        raise BadInput(f"{path} is not in {repo!r} on {endpoint}") from None
    except Exception as exc:  # noqa: BLE001
        raise _hub_error(exc, repo, endpoint) from None
    return header, counter.bytes


# --- resolving ---------------------------------------------------------------------------------------------------


def _parse_remote(source: str) -> tuple[str, str | None, str | None, str | None] | None:
    """(repo, quant, file path, revision) for hub references, None for anything else."""
    text = source.strip()
    endpoint_host = hub_endpoint().split("://", 1)[-1] + "/"
    lowered = text.lower()
    for prefix in _URL_PREFIXES:
        if lowered.startswith(prefix):
            text, lowered = text[len(prefix) :], lowered[len(prefix) :]
            break
    for prefix in (*_HOST_PREFIXES, endpoint_host.lower()):
        if lowered.startswith(prefix):
            text = text[len(prefix) :]
            break
    text = text.strip("/")
    quant = None
    if ":" in text:
        text, _, quant = text.partition(":")
        quant = quant.strip() or None
    parts = text.split("/")
    if len(parts) < 2:
        return None
    repo = "/".join(parts[:2])
    if not _REPO_RE.match(repo):
        return None
    rest, path, revision = parts[2:], None, None
    if rest and rest[0] in ("blob", "resolve", "tree") and len(rest) >= 2:
        revision = rest[1] if rest[1] != "main" else None
        path = "/".join(rest[2:]) or None
    elif rest:
        path = "/".join(rest)
    if path and not path.lower().endswith(".gguf"):
        return None if rest[0] not in ("tree",) else (repo, quant, None, revision)
    return repo, quant, path, revision


def resolve_model(source: str, *, offline: bool = False, quant: str | None = None) -> ResolvedModel:
    """Resolve what the user typed into candidate files, without reading any model data."""
    text = source.strip()
    if not text:
        raise BadInput("no model given: name a Hugging Face repo, a local .gguf file or a catalog model")
    local = Path(text).expanduser()
    looks_local = text.startswith(("/", "./", "../", "~", ".\\")) or (
        text.lower().endswith(".gguf") and not _parse_remote(text)
    )
    if _exists(local, looks_local) or looks_local:
        return _resolve_local(text, local, quant)

    from planner.data import catalog

    remote = _parse_remote(text)
    entry = catalog.find(text)
    if remote is None and entry is None:
        raise BadInput(
            f"unknown model {source!r}: give a Hugging Face repo (owner/name[:quant]), a local .gguf file "
            f"or a catalog name (see `planner catalog list`){catalog.did_you_mean(text)}"
        )
    if remote is None:  # a catalog alias: it names a repo
        assert entry is not None
        repo, file_quant, path, revision = entry.repo, None, None, None
        if ":" in text:
            file_quant = text.rsplit(":", 1)[1].strip() or None
    else:
        repo, file_quant, path, revision = remote
        entry = entry or catalog.find(repo)
        check_repo_id(repo)  # what the user typed; a catalog entry's repo is planner's own (and the check's import
        # of huggingface_hub would cost the offline plan a tenth of a second)
    wanted = quant or file_quant
    if offline or hub_offline():
        return _from_catalog(source, repo, entry, wanted, reason="offline mode")
    try:
        listing = list_repo_ggufs(repo, revision=revision)
    except HubUnreachable as exc:
        return _from_catalog(source, repo, entry, wanted, reason=exc.message)
    resolved = ResolvedModel(
        source=source,
        kind="repo",
        repo=repo,
        revision=listing.revision,
        endpoint=hub_endpoint(),
        candidates=listing.quants,
        mmproj=_smallest(listing.mmproj),
        catalog_name=entry.name if entry else None,
    )
    if path:
        match = [c for c in listing.quants if path in c.paths]
        if not match:
            raise BadInput(f"{path} is not a model file in {repo!r} on {hub_endpoint()}")
        resolved.quant = match[0].quant
    if wanted:
        resolved.quant = resolved.choice(wanted).quant
    elif len(resolved.candidates) == 1:
        resolved.quant = resolved.candidates[0].quant
    return resolved


def _exists(path: Path, looks_local: bool) -> bool:
    """Whether `path` exists; a name longer than the file system allows is bad input (exit 2), not an
    environment problem, when the text can only be a path."""
    try:
        return path.exists()
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        if looks_local:
            raise BadInput(f"{str(path)[:80]}...: file name too long for this file system") from None
        return False


def _smallest(files: list[RepoFile]) -> RepoFile | None:
    # A repo may offer the projector at several precisions; the smallest is what a memory plan should assume
    # the user can run, and llama.cpp loads one of them.
    return min(files, key=lambda f: f.size) if files else None


def _from_catalog(
    source: str, repo: str, entry: CatalogModel | None, quant: str | None, *, reason: str
) -> ResolvedModel:
    endpoint = hub_endpoint()
    if entry is None:
        from planner.data.catalog import did_you_mean

        raise EnvironmentProblem(
            f"{reason}, and {repo!r} is not in the offline catalog (planner catalog list){did_you_mean(repo)}"
        )
    candidates = [
        QuantChoice(
            quant=q.quant,
            files=[RepoFile(path=name, size=q.size_bytes if len(q.files) == 1 else 0) for name in q.files],
            size_bytes=q.size_bytes,
        )
        for q in sorted(entry.quants, key=lambda q: q.size_bytes)
    ]
    resolved = ResolvedModel(
        source=source,
        kind="catalog",
        repo=entry.repo,
        endpoint=endpoint,
        candidates=candidates,
        catalog_name=entry.name,
        notices=[f"{reason}: using the offline catalog for {entry.repo}"],
    )
    if quant:
        if not any(q.quant == quant.strip().upper() for q in entry.quants):
            raise BadInput(entry.missing_quant_message(quant.strip()))
        resolved.quant = resolved.choice(quant).quant
    return resolved


def _resolve_local(source: str, path: Path, quant: str | None) -> ResolvedModel:
    from planner.models.gguf_header import regular_file_size

    try:
        str(path.absolute()).encode("utf-8")
    except UnicodeEncodeError:  # bytes Python could not decode: the path could not go into JSON, YAML or a unit
        raise BadInput(f"{path!s:.200} is not a UTF-8 path; rename the file or link it under a UTF-8 name") from None
    if not path.exists():
        raise BadInput(f"{path} does not exist")
    if path.is_dir():
        folder, names = path, sorted(p.name for p in path.iterdir() if p.is_file())
    else:
        folder, names = path.parent, [path.name]
        if m := _SPLIT_RE.match(path.name):  # one shard names the whole set
            prefix = m.group("stem") + "-"
            names = sorted(p.name for p in folder.iterdir() if p.name.startswith(prefix) and _SPLIT_RE.match(p.name))
        # a projector beside the model is recorded (it needs memory), never chosen as the model
        names += sorted(p.name for p in folder.iterdir() if p.suffix == ".gguf" and _is_mmproj(p.name))
    files = [RepoFile(path=n, size=regular_file_size(folder / n)) for n in dict.fromkeys(names)]
    quants, mmproj, skipped = group_ggufs(files, where=str(path))
    if not path.is_dir() and (m := _SPLIT_RE.match(path.name)):
        count = int(m.group("count"))
        if not quants:
            found = sum(1 for n in names if _SPLIT_RE.match(n))
            raise BadInput(f"{path.name} is part of a {count}-part model but only {found} parts are in {folder}")
    if not quants:
        if not path.is_dir() and _is_mmproj(path.name):
            raise BadInput(f"{path.name} is a vision projector (mmproj), not a model")
        raise BadInput(f"{path} holds no GGUF model files")
    resolved = ResolvedModel(
        source=source,
        kind="local",
        local_dir=str(folder.resolve()),
        candidates=quants,
        mmproj=_smallest(mmproj),
    )
    if quant:
        resolved.quant = resolved.choice(quant).quant
    elif len(quants) == 1:
        resolved.quant = quants[0].quant
    return resolved


# --- facts -------------------------------------------------------------------------------------------------------


def facts_for(resolved: ResolvedModel, quant: str | None = None) -> ModelFacts:
    """ModelFacts for one candidate: its real header (local or remote), else the catalog entry."""
    from planner.data import catalog

    choice = resolved.choice(quant)
    if resolved.kind == "catalog":
        entry = catalog.find(resolved.catalog_name or resolved.repo or resolved.source)
        assert entry is not None
        return catalog.facts_from_catalog(entry, choice.quant, source=resolved.source)
    if resolved.kind == "local":
        facts = _local_facts(resolved, choice)
    else:
        try:
            facts = _remote_facts(resolved, choice)
        except HubUnreachable as exc:
            entry = catalog.find(resolved.catalog_name or resolved.repo or "")
            if entry is None:
                raise
            resolved.notices.append(f"{exc.message}: using the offline catalog for {entry.repo}")
            return catalog.facts_from_catalog(entry, choice.quant, source=resolved.source)
    if resolved.mmproj is not None:
        facts.mmproj_file = resolved.mmproj.path
        facts.mmproj_bytes = resolved.mmproj.size
    return facts


def _local_facts(resolved: ResolvedModel, choice: QuantChoice) -> ModelFacts:
    from planner.models.gguf_header import facts_from_headers, read_local, require_tensors

    folder = Path(resolved.local_dir or ".")
    headers = [read_local(folder / f.path) for f in choice.files]
    require_tensors(headers, choice.files[0].path)
    return facts_from_headers(headers, source=resolved.source, files=[str(folder / f.path) for f in choice.files])


def _remote_facts(resolved: ResolvedModel, choice: QuantChoice) -> ModelFacts:
    from planner.models.gguf_header import check_complete, facts_from_headers, require_tensors

    assert resolved.repo is not None
    headers, transferred = [], 0
    for f in choice.files:
        header, n = read_remote_header(resolved.repo, f.path, size=f.size, revision=resolved.revision)
        check_complete(header)
        headers.append(header)
        transferred += n
    require_tensors(headers, choice.files[0].path)
    facts = facts_from_headers(headers, source=resolved.source, files=choice.paths, repo=resolved.repo)
    facts.header_bytes_read = transferred
    return facts
