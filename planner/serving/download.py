"""Fetch the planned GGUF file(s) from the Hugging Face Hub: resumable, sha256-verified, in the user's cache.

huggingface_hub (2.x) does not resume across runs: it downloads into a process-unique temporary file and deletes
it on failure (its PR #4228), and it checks the size, not the sha256. So planner keeps its own `.partial` file
next to the destination and continues it with an HTTP Range request, using huggingface_hub's own pieces for
everything else: `hf_hub_url`, `get_hf_file_metadata` (etag, size, commit), `get_paths_info` (the LFS sha256),
`get_session` + `build_hf_headers` (HF_ENDPOINT, HF_TOKEN, proxies, user agent) and its cache layout.

Destinations: the standard cache (`$HF_HOME/hub/models--org--name/blobs/<etag>` + the `snapshots/<commit>/` link,
made by `hf_hub_download` itself once the blob is in place) or `--models-dir DIR` (huggingface_hub's local_dir
layout, with its download metadata written so other tools see the file as complete).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import BadInput, EnvironmentProblem
from planner.types.deploy import ModelFiles
from planner.types.model import PlannedModel

_CHUNK = 1 << 20
_RETRIES = 3  # in-run resumptions after a dropped connection, before giving up (the .partial stays for next run)


@dataclass
class RemoteFile:
    repo: str
    filename: str
    revision: str
    url: str
    size: int
    etag: str
    commit: str
    sha256: str | None


# --- what the plan names ------------------------------------------------------------------------------------


def _local_paths(model: PlannedModel) -> list[Path] | None:
    """The files of a model on this machine (used in place), or None when the model comes from the hub."""
    if model.repo:
        return None
    for raw in (model.file, model.source):
        if raw and Path(raw).expanduser().is_file():
            first = Path(raw).expanduser().resolve()
            break
    else:
        raise BadInput(f"model file not found: {model.file or model.source or '(none named)'}")
    names = model.file_names()
    if len(names) > 1:  # shards of a split GGUF sit next to the first one
        return [first.parent / Path(n).name for n in names]
    return [first]


# --- hub metadata -------------------------------------------------------------------------------------------


def _hub_errors(repo: str) -> Callable[[Exception], Exception | None]:
    """Turn huggingface_hub's typed errors into one line that says what to do."""

    def translate(err: Exception) -> Exception | None:
        import httpx2
        from huggingface_hub import constants
        from huggingface_hub.errors import (
            GatedRepoError,
            OfflineModeIsEnabled,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        if isinstance(err, GatedRepoError):
            return EnvironmentProblem(
                f"{repo} is gated: accept its terms at {constants.ENDPOINT}/{repo} and set HF_TOKEN to a token "
                "of that account"
            )
        if isinstance(err, RepositoryNotFoundError):
            return BadInput(f"no model repository {repo} on {constants.ENDPOINT} (or it is private: set HF_TOKEN)")
        if isinstance(err, RevisionNotFoundError):
            return BadInput(f"{repo} has no such revision")
        if isinstance(err, RemoteEntryNotFoundError):
            return BadInput(f"{repo} has no such file: {err}".splitlines()[0])
        if isinstance(err, OfflineModeIsEnabled):
            return EnvironmentProblem("HF_HUB_OFFLINE is set and the model is not downloaded yet")
        if isinstance(err, httpx2.HTTPError | OSError):
            return EnvironmentProblem(f"cannot download from {constants.ENDPOINT}: {err}".splitlines()[0])
        return None

    return translate


def describe_remote(
    repo: str, filenames: Iterable[str], revision: str, known_sha256: dict[str, str]
) -> list[RemoteFile]:
    """Size, etag, commit and LFS sha256 of each file, from one HEAD per file and one paths-info request."""
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url

    translate = _hub_errors(repo)
    filenames = list(filenames)
    try:
        metas = [(name, get_hf_file_metadata(hf_hub_url(repo, name, revision=revision))) for name in filenames]
        sha = dict(known_sha256)
        missing = [n for n in filenames if n not in sha]
        if missing:
            for entry in HfApi().get_paths_info(repo, missing, revision=revision):
                lfs = getattr(entry, "lfs", None)
                if lfs is not None:
                    sha[entry.path] = lfs.sha256
    except Exception as err:  # huggingface_hub and httpx2 errors: one line for the user
        if (mapped := translate(err)) is not None:
            raise mapped from None
        raise
    files = []
    for name, meta in metas:
        if meta.size is None or meta.etag is None or meta.commit_hash is None:
            raise EnvironmentProblem(f"the hub did not say the size, etag and commit of {repo}/{name}")
        files.append(
            RemoteFile(repo, name, revision, hf_hub_url(repo, name, revision=revision), meta.size, meta.etag,
                       meta.commit_hash, sha.get(name))
        )  # fmt: skip
    return files


# --- destinations -------------------------------------------------------------------------------------------


@dataclass
class Destination:
    """Where one file ends up, where its partial download lives, and how to publish it."""

    remote: RemoteFile
    final: Path  # the path a server is given (cache: snapshots/<commit>/<file>, a link to the blob)
    blob: Path  # the real bytes (cache: blobs/<etag>; models dir: the file itself)
    partial: Path
    models_dir: Path | None

    @property
    def complete(self) -> bool:
        if self.models_dir is None:
            return self.final.exists() or self.blob.exists()
        from huggingface_hub._local_folder import read_download_metadata

        if not self.final.is_file() or self.final.stat().st_size != self.remote.size:
            return False
        meta = read_download_metadata(local_dir=self.models_dir, filename=self.remote.filename)
        return meta is None or meta.etag == self.remote.etag  # None: a file the user put there, of the right size

    def partial_size(self) -> int:
        return self.partial.stat().st_size if self.partial.exists() else 0


def destination(remote: RemoteFile, models_dir: Path | None) -> Destination:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    if models_dir is not None:
        final = models_dir / remote.filename
        return Destination(remote, final, final, final.with_name(final.name + ".partial"), models_dir)
    storage = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=remote.repo, repo_type="model")
    blob = storage / "blobs" / remote.etag
    final = storage / "snapshots" / remote.commit / remote.filename
    return Destination(remote, final, blob, blob.with_name(blob.name + ".partial"), None)


def _publish(dest: Destination) -> None:
    """Move a verified .partial into place and let huggingface_hub record it in its own layout."""
    dest.blob.parent.mkdir(parents=True, exist_ok=True)
    os.replace(dest.partial, dest.blob)
    _link(dest)


def _link(dest: Destination) -> None:
    r = dest.remote
    if dest.models_dir is None:
        # The blob is in place, so hf_hub_download only makes the snapshot link and the ref (one HEAD request).
        from huggingface_hub import hf_hub_download

        hf_hub_download(r.repo, r.filename, revision=r.revision)
    else:
        from huggingface_hub._local_folder import write_download_metadata

        write_download_metadata(local_dir=dest.models_dir, filename=r.filename, commit_hash=r.commit, etag=r.etag)


def check_disk_space(dests: list[Destination]) -> None:
    """Fail before downloading when the files cannot fit, saying how much is needed and free."""
    needed = sum(d.remote.size - d.partial_size() for d in dests if not d.complete)
    if needed <= 0:
        return
    folder = dests[0].partial.parent
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise EnvironmentProblem(
            f"not enough disk space in {folder}: the download needs {_gib(needed)}, {_gib(free)} is free"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


# --- the transfer -------------------------------------------------------------------------------------------

Advance = Callable[[int], None]


def fetch(dest: Destination, advance: Advance, *, retries: int = _RETRIES) -> int:
    """Download into dest.partial, resuming from its size; verify; publish. Returns the bytes fetched now."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    r = dest.remote
    dest.partial.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    have = _hash_into(digest, dest.partial)
    if have > r.size:  # a stale partial from another version of the file
        dest.partial.unlink()
        digest, have = hashlib.sha256(), 0
    advance(have)
    fetched = 0
    attempt = 0
    while have < r.size:
        headers = build_hf_headers()
        headers["Accept-Encoding"] = "identity"
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with get_session().stream(
                "GET",
                r.url,
                headers=headers,
                follow_redirects=True,
                timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    hf_raise_for_status(response)
                if have and response.status_code == 200:  # the server ignored the Range: start over
                    dest.partial.unlink(missing_ok=True)
                    advance(-have)
                    digest, have = hashlib.sha256(), 0
                with dest.partial.open("ab") as out:
                    for chunk in response.iter_bytes():  # as received: a cut keeps all but the last packet
                        out.write(chunk)
                        digest.update(chunk)
                        have += len(chunk)
                        fetched += len(chunk)
                        advance(len(chunk))
        except Exception as err:
            import httpx2

            if not isinstance(err, httpx2.TransportError):
                if (mapped := _hub_errors(r.repo)(err)) is not None:
                    raise mapped from None
                raise
            # a dropped connection or a timeout: resume below, with a Range from what is on disk
        if have < r.size:
            if attempt >= retries:
                raise EnvironmentProblem(
                    f"the download of {r.filename} stopped at {have} of {r.size} bytes; "
                    "run the same command again to resume it"
                )
            attempt += 1
    if have != r.size:
        dest.partial.unlink(missing_ok=True)
        raise EnvironmentProblem(f"{r.filename}: received {have} bytes, the hub says {r.size}; deleted, run again")
    _verify(dest, digest.hexdigest())
    _publish(dest)
    return fetched


def _hash_into(digest: Any, path: Path) -> int:
    if not path.exists():
        return 0
    size = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return size


def _verify(dest: Destination, actual: str) -> None:
    expected = dest.remote.sha256 or (dest.remote.etag if len(dest.remote.etag) == 64 else None)
    if expected is None:
        return  # a small non-LFS file: the hub publishes a git blob id, not a sha256; the size was checked
    if actual != expected:
        dest.partial.unlink(missing_ok=True)
        raise EnvironmentProblem(
            f"{dest.remote.filename}: sha256 {actual[:16]}... does not match the hub's {expected[:16]}...; "
            "the file was deleted, run again to download it afresh"
        )


# --- the entry point ----------------------------------------------------------------------------------------


def ensure_model(
    model: PlannedModel,
    *,
    models_dir: Path | None = None,
    download: bool = True,
    progress: Any | None = None,
    retries: int = _RETRIES,
) -> ModelFiles:
    """Make the plan's model files present (or, with download=False, say where they would be).

    `progress` is a rich Progress (or None for silence). Local files are used in place, never copied.
    """
    local = _local_paths(model)
    if local is not None:
        missing = [p for p in local if not p.is_file()]
        if missing:
            raise BadInput(f"model file not found: {missing[0]}")
        return ModelFiles(
            path=str(local[0]), files=[str(p) for p in local], source="local",
            size_bytes=sum(p.stat().st_size for p in local),
        )  # fmt: skip

    repo = model.repo
    names = model.file_names()
    if repo and not names:  # planned from the offline catalog, whose entry does not record this quant's file
        raise BadInput(
            f"the offline catalog does not name {repo}'s {model.quant or 'model'} file: deploy it with the "
            "hub reachable (no --offline, HF_HUB_OFFLINE unset), or give a downloaded .gguf path"
        )
    if not repo or not names:
        raise BadInput("the plan names no model file to deploy (no repo/file and no local path)")
    # the commit the plan was made on: the files deployed are the files planned, even if the repo moved on
    revision = model.revision or "main"
    try:
        remotes = describe_remote(repo, names, revision, model.known_sha256())
    except EnvironmentProblem:
        cached = _cached_paths(str(repo), names, revision, models_dir)
        if cached is None and not download:
            # --no-download without the hub: name where the files will be; the launch step downloads them
            return _expected_paths(str(repo), names, revision, models_dir)
        if cached is None:
            raise
        return ModelFiles(
            path=cached[0], files=cached, repo=str(repo), revision=revision,
            size_bytes=sum(Path(p).stat().st_size for p in cached),
        )  # fmt: skip
    if models_dir is not None:
        models_dir = models_dir.expanduser().resolve()
    dests = [destination(r, models_dir) for r in remotes]
    result = ModelFiles(
        path=str(dests[0].final), files=[str(d.final) for d in dests], repo=str(repo), revision=revision,
        commit=remotes[0].commit, size_bytes=sum(r.size for r in remotes),
    )  # fmt: skip
    todo = [d for d in dests if not d.complete]
    if not download:
        result.present = not todo
        return result
    check_disk_space(dests)
    result.resumed_from_bytes = sum(d.partial_size() for d in todo)
    for dest in dests:
        if dest.complete:
            if not dest.final.exists():  # blob present, link missing (an earlier run stopped in between)
                _link(dest)
            continue
        advance = _progress_advance(progress, dest)
        result.downloaded_bytes += fetch(dest, advance, retries=retries)
    result.verified_sha256 = bool(todo) and all(d.remote.sha256 or len(d.remote.etag) == 64 for d in todo)
    return result


def _expected_paths(repo: str, names: list[str], revision: str, models_dir: Path | None) -> ModelFiles:
    """Where files not yet downloaded will land, when the hub cannot be asked for the commit they resolve to."""
    if models_dir is not None:
        base = models_dir.expanduser().resolve()
    else:
        from huggingface_hub.constants import HF_HUB_CACHE

        base = Path(HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "snapshots" / revision
    files = [str(base / name) for name in names]
    return ModelFiles(path=files[0], files=files, repo=repo, revision=revision, present=False)


def _cached_paths(repo: str, names: list[str], revision: str, models_dir: Path | None) -> list[str] | None:
    """Offline (or the hub unreachable): the files from an earlier download, if every one is there."""
    from huggingface_hub import try_to_load_from_cache

    paths = []
    for name in names:
        if models_dir is not None:
            found: object = models_dir / name if (models_dir / name).is_file() else None
        else:
            found = try_to_load_from_cache(repo, name, revision=revision)
        if not isinstance(found, str | Path):
            return None
        paths.append(str(found))
    return paths


def _progress_advance(progress: Any | None, dest: Destination) -> Advance:
    if progress is None:
        return lambda n: None
    task = progress.add_task(dest.remote.filename, total=dest.remote.size, bytes=True)
    return lambda n: progress.advance(task, n)
