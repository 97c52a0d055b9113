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
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import BadInput, EnvironmentProblem
from planner.models.hub_errors import hub_error
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
    """Turn huggingface_hub's typed errors into one line that says what to do (planner.models.hub_errors)."""
    return lambda err: hub_error(err, repo)


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
        """The right size is on disk: the cheap look before any lock (fetch checks the content under the lock)."""
        return _regular_size(self.blob) == self.remote.size

    def partial_size(self) -> int:
        return _regular_size(self.partial) or 0


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
    """Make dest.blob the hub's file: keep a copy that checks out, else download, verify and publish it.

    All of it runs under huggingface_hub's own lock for this file, so two deploys (or planner and `hf download`)
    never write the same `.partial` at once: the second waits, then finds the first one's verified copy.
    Returns the bytes fetched now.
    """
    with _file_lock(dest):
        published = not _trusted_copy(dest)
        fetched = _transfer(dest, advance, retries) if published else 0
        if published:
            _publish(dest)
    # Outside the lock: huggingface_hub takes the same lock to make the snapshot link or write its metadata.
    if published or not dest.final.exists():  # (a link missing: an earlier run stopped in between)
        _link(dest)
    return fetched


def _transfer(dest: Destination, advance: Advance, retries: int) -> int:
    """Fill dest.partial up to the hub's size, resuming from what is there. Returns the bytes fetched now."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    r = dest.remote
    dest.partial.parent.mkdir(parents=True, exist_ok=True)
    have = _regular_size(dest.partial) or 0
    if have > r.size or _lexists(dest.partial) and not _is_regular(dest.partial):
        dest.partial.unlink()  # a stale partial from another version of the file (or not a file at all)
        have = 0
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
                    have = 0
                with _open_partial(dest.partial) as out:
                    for chunk in response.iter_bytes():  # as received: a cut keeps all but the last packet
                        out.write(chunk)
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
    return fetched


def _open_partial(path: Path) -> Any:
    """Append to the partial file, never through a link someone put in its place."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "ab")


def _publish(dest: Destination) -> None:
    """Hash the complete .partial as it is on disk, move it into place, and prove the published file is that one.

    The hash is of the file, not of the bytes this process streamed: what another writer added is caught too.
    After the rename the blob must still be the same inode, size and mtime that was hashed.
    """
    hashed = _hash_file(dest.partial)
    if hashed.size != dest.remote.size:
        dest.partial.unlink(missing_ok=True)
        raise EnvironmentProblem(
            f"{dest.remote.filename}: the file on disk has {hashed.size} bytes, the hub says {dest.remote.size}; "
            "deleted, run again"
        )
    expected = _expected_sha256(dest.remote)
    if expected is not None and hashed.sha256 != expected:
        dest.partial.unlink(missing_ok=True)
        raise EnvironmentProblem(
            f"{dest.remote.filename}: sha256 {hashed.sha256[:16]}... does not match the hub's {expected[:16]}...; "
            "the file was deleted, run again to download it afresh"
        )
    dest.blob.parent.mkdir(parents=True, exist_ok=True)
    os.replace(dest.partial, dest.blob)
    if _identity(dest.blob) != hashed.identity:
        dest.blob.unlink(missing_ok=True)
        raise EnvironmentProblem(f"{dest.remote.filename} changed while it was verified; deleted, run again")
    _record_verified(dest, hashed)


def _expected_sha256(remote: RemoteFile) -> str | None:
    # None: a small non-LFS file: the hub publishes a git blob id, not a sha256; only the size can be checked
    return remote.sha256 or (remote.etag if len(remote.etag) == 64 else None)


# --- trusting what is already on disk -----------------------------------------------------------------------

_MARKER_MAX = 4096  # a verification record is one short JSON line; anything bigger is not one of planner's


@dataclass(frozen=True)
class Hashed:
    sha256: str
    size: int
    identity: tuple[int, int, int, int]  # (st_dev, st_ino, st_size, st_mtime_ns) of the file that was hashed


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _lexists(path: Path) -> bool:
    return os.path.lexists(path)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _regular_size(path: Path) -> int | None:
    """The size of the regular file at `path`; None when there is none (a link there is not followed)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _hash_file(path: Path) -> Hashed:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        before = os.fstat(fh.fileno())
        size = 0
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
        after = os.fstat(fh.fileno())
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or size != after.st_size:
        raise EnvironmentProblem(f"{path} was written to while planner verified it; run again")
    return Hashed(digest.hexdigest(), size, (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns))


def _marker_path(dest: Destination) -> Path:
    """planner's record that it hashed this very file (by inode, size and mtime), next to huggingface_hub's lock.

    Hashing a 40 GB blob on every deploy would cost minutes; the record makes a re-check a stat() call.
    """
    return _lock_path(dest).with_suffix(".planner-verified")


def _record_verified(dest: Destination, hashed: Hashed) -> None:
    from planner.serving.files import atomic_write

    record = {"sha256": hashed.sha256, "identity": list(hashed.identity)}
    atomic_write(_marker_path(dest), (json.dumps(record) + "\n").encode())


def _recorded_as_verified(dest: Destination, expected: str) -> bool:
    marker = _marker_path(dest)
    if not _is_regular(marker):
        return False
    try:
        with marker.open("rb") as fh:
            record = json.loads(fh.read(_MARKER_MAX + 1)[:_MARKER_MAX] or b"null")
        return (
            isinstance(record, dict)
            and record.get("sha256") == expected
            and tuple(record.get("identity") or ()) == _identity(dest.blob)
        )
    except (OSError, ValueError):
        return False


def _trusted_copy(dest: Destination) -> bool:
    """Whether the file already there is the hub's (right size, and right sha256 when the hub gives one).

    Called under the lock. A wrong copy in the cache (huggingface_hub's, which planner shares) is deleted so it
    is downloaded afresh; one in --models-dir is only replaced when huggingface_hub's download metadata says a
    download put it there; a file the user put there is never overwritten: one line says so instead.
    """
    size = _regular_size(dest.blob)
    if size is None and not _lexists(dest.blob):
        return False
    expected = _expected_sha256(dest.remote)
    if size == dest.remote.size:
        if expected is None or _recorded_as_verified(dest, expected):
            return True
        hashed = _hash_file(dest.blob)
        if hashed.sha256 == expected:
            _record_verified(dest, hashed)
            return True
        problem = f"its sha256 {hashed.sha256[:16]}... is not the hub's {expected[:16]}..."
    elif size is None:
        problem = "it is not a regular file"
    else:
        problem = f"it has {size} bytes, the hub's has {dest.remote.size}"
    if dest.models_dir is not None and not _downloaded_here(dest):
        raise BadInput(
            f"{dest.blob} is not {dest.remote.repo}/{dest.remote.filename} ({problem}); "
            "move it away or choose another --models-dir"
        )
    dest.blob.unlink()  # a corrupt or stale copy planner or huggingface_hub downloaded: fetched again below
    return False


def _downloaded_here(dest: Destination) -> bool:
    """Whether huggingface_hub's download metadata (written by it or by planner) names this file in --models-dir."""
    from huggingface_hub._local_folder import get_local_download_paths

    assert dest.models_dir is not None
    return _is_regular(get_local_download_paths(dest.models_dir, dest.remote.filename).metadata_path)


def _lock_path(dest: Destination) -> Path:
    """huggingface_hub's own lock for this file, so its downloads and planner's exclude each other too."""
    if dest.models_dir is not None:
        from huggingface_hub._local_folder import get_local_download_paths

        try:
            return get_local_download_paths(dest.models_dir, dest.remote.filename).lock_path
        except ValueError as err:  # a file name that would land outside --models-dir
            raise BadInput(f"{dest.remote.repo}: {err}".splitlines()[0]) from None
    from huggingface_hub import constants

    storage = dest.blob.parent.parent.name  # models--org--name
    return Path(constants.HF_HUB_CACHE) / ".locks" / storage / f"{dest.remote.etag}.lock"


@contextmanager
def _file_lock(dest: Destination) -> Iterator[None]:
    """Hold huggingface_hub's lock on this file (flock; a lock file where the file system has no flock).

    The wait is not bounded: the holder is another download whose own network waits are bounded, and an flock
    dies with its process. 0o664 as huggingface_hub makes it, so users sharing a cache can wait on each other.
    """
    from filelock import FileLock, SoftFileLock

    path = _lock_path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), mode=0o664)
    try:
        lock.acquire()
    except NotImplementedError:
        lock = SoftFileLock(str(path))
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


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
        # Every file goes through fetch: a copy that looks complete is checked there, under the lock.
        advance = _progress_advance(progress, dest) if dest in todo else _silent
        result.downloaded_bytes += fetch(dest, advance, retries=retries)
    result.verified_sha256 = all(_expected_sha256(d.remote) for d in dests)
    return result


def _silent(n: int) -> None:
    pass


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
