"""Writing rendered files safely: atomic, with the right mode, and never over a file the user changed.

`.planner-manifest.json` in the output folder records the sha256 of every file planner wrote. A file that exists
and differs both from the new content and from what planner last wrote was edited by someone (or was never
planner's): it is only replaced with --force, and then a `.bak` copy is kept. Before each file is written the
manifest also names its new content as `pending`, so a run cut short by a failed write leaves nothing that looks
edited.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import stat
import tempfile
from pathlib import Path

from planner.errors import BadInput, EnvironmentProblem, PlannerError
from planner.types.untrusted import check_printable

MANIFEST = ".planner-manifest.json"
API_KEY_FILE = "api-key"
_MAX_READ = 64 * 2**20  # planner's own files (manifest, key, rendered files) are kilobytes; more is not one of them
_NO_FOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK  # O_NONBLOCK: opening a FIFO put in a file's place does not hang


# --- never through a link --------------------------------------------------------------------------------------
# The output folder may hold links or FIFOs someone put there. planner reads, chmods and backs up its files only
# as regular files, opened with O_NOFOLLOW; a link where planner writes is moved aside (--force) or refused,
# never written through, so nothing outside the folder is read, changed or created.


def is_regular(path: Path) -> bool:
    """A regular file at `path` itself (lstat: a link is not one, whatever it points to)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _open_regular(path: Path, flags: int, mode: int = 0o644) -> int:
    """An fd on the regular file at `path`, never through a link; BadInput when something else is there."""
    try:
        fd = os.open(path, flags | _NO_FOLLOW, mode)
    except OSError as err:
        if err.errno == errno.ELOOP:  # O_NOFOLLOW met a link
            raise BadInput(f"{path} is a symbolic link; planner uses only a regular file there: remove it") from None
        if err.errno == errno.ENXIO:  # a FIFO opened for writing, with no reader
            raise _not_regular(path) from None
        raise EnvironmentProblem(f"can't open {path}: {err.strerror or err}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_regular(path)
    os.set_blocking(fd, True)
    return fd


def _not_regular(path: Path) -> BadInput:
    return BadInput(f"{path} is not a regular file; planner uses only a regular file there: remove it")


def read_regular(path: Path, limit: int = _MAX_READ) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` (BadInput when larger), never through a link."""
    with os.fdopen(_open_regular(path, os.O_RDONLY), "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise BadInput(f"{path} is larger than {limit} bytes; it is not one of planner's files")
    return data


def open_for_append(path: Path) -> int:
    """An fd appending to the regular file at `path` (created 0644 if missing), never through a link or a FIFO."""
    return _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temporary file in the same folder, set its mode, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # before any byte is written: a secret is never readable by others, not even briefly
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable_dir(path: Path, option: str) -> Path:
    """`path` resolved, when planner could create and write it; else one BadInput line naming `option`.

    Called where the option enters (deploy checks --out and --models-dir before it plans or downloads), so a
    typo costs a second, not a download. Nothing is created here.
    """
    check_printable(str(path), option)  # first: a NUL byte would make resolve() raise
    resolved = path.expanduser().resolve()
    try:
        str(resolved).encode("utf-8")
    except UnicodeEncodeError:  # the folder's path goes into YAML, JSON and unit files, which are UTF-8
        raise BadInput(f"{option} {str(path)!r}: not a UTF-8 path; choose a folder whose name is UTF-8") from None
    # ... and those files are line-based: a newline (or CR, U+2028...) in the path would start a new line there.
    check_printable(str(resolved), option)
    if resolved.exists() and not resolved.is_dir():
        raise BadInput(f"{option} {path} is a file, not a folder")
    existing = resolved
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"{option} {path}: no permission to write in {existing}")
    return resolved


def make_dir(path: Path) -> None:
    """mkdir -p, with the system's reason as one line when it can't (a read-only or virtual file system)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EnvironmentProblem(f"can't create folder {path}: {err.strerror or err}") from None


def api_key_for(out_dir: Path) -> str:
    """The API key kept in out_dir/api-key (first non-comment line), or a new random one."""
    path = out_dir / API_KEY_FILE
    if os.path.lexists(path):  # a link here is refused, not followed: its target is not read or chmod-ed
        text = read_regular(path, 64 * 1024).decode("utf-8", errors="replace")
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                return line.strip()
    return secrets.token_urlsafe(32)


def _free_backup_name(path: Path) -> Path:
    """NAME.bak, or NAME.bak.1, .2 ... when an earlier --force left one: an older backup is never replaced."""
    backup = path.with_name(path.name + ".bak")
    number = 0
    while os.path.lexists(backup):  # a dangling link counts as taken: writing "into" it would land elsewhere
        number += 1
        backup = path.with_name(f"{path.name}.bak.{number}")
    return backup


class ManagedWriter:
    """Writes files into one folder, refusing to replace user edits unless forced."""

    def __init__(self, out_dir: Path, *, force: bool = False) -> None:
        self.out_dir = out_dir
        self.force = force
        self.manifest_path = out_dir / MANIFEST
        # recorded: what planner wrote and confirmed. pending: what it was about to write when the manifest was
        # last saved; a run cut short (a full disk) may have left either content, and both are planner's.
        self.recorded, self.pending = self._load()
        self.written: list[Path] = []
        self.backups: list[Path] = []

    def _load(self) -> tuple[dict[str, str], dict[str, str]]:
        try:
            data = json.loads(read_regular(self.manifest_path))
            return _digests(data.get("files")), _digests(data.get("pending"))
        except (OSError, ValueError, AttributeError, PlannerError):  # none, or not planner's: all count as edited
            return {}, {}

    def edited(self, name: str) -> bool:
        """True when something is there that is not what planner last wrote (a link or FIFO always is)."""
        path = self.out_dir / name
        if not os.path.lexists(path):
            return False
        if not is_regular(path):
            return True
        return sha256_bytes(read_regular(path)) not in (self.recorded.get(name), self.pending.get(name))

    def check(self, names: list[str]) -> None:
        """Refuse up front (nothing written yet) when any of `names` was edited and --force is not given."""
        if self.force:
            return
        edited = [n for n in names if n != API_KEY_FILE and self.edited(n)]
        if edited:
            listing = ", ".join(str(self.out_dir / n) for n in edited)
            raise BadInput(
                f"{listing} changed since planner wrote {'it' if len(edited) == 1 else 'them'}; "
                "rerun with --force to replace (a .bak copy is kept)"
            )

    def write(self, name: str, content: str, mode: int) -> Path:
        path = self.out_dir / name
        data = content.encode()
        digest = sha256_bytes(data)
        if is_regular(path) and sha256_bytes(read_regular(path)) == digest:
            _chmod_regular(path, mode)
            self.recorded[name] = digest
            self.written.append(path)
            return path
        if self.edited(name):
            self.backups.append(_back_up(path))
        # Write-ahead: the manifest names the new content before it reaches the disk, so a write that fails
        # (a full disk) leaves only contents the manifest knows, and the rerun does not see an "edited" file.
        self.pending[name] = digest
        self._save()
        atomic_write(path, data, mode)  # a rename: a link left at `path` would be replaced, not followed
        self.recorded[name] = self.pending.pop(name)
        self.written.append(path)
        return path

    def keep(self, name: str) -> None:
        path = self.out_dir / name
        _chmod_regular(path, 0o600)
        self.written.append(path)

    def save_manifest(self) -> None:
        """The render is complete: what an earlier, cut-short run left pending is planner's if it is still there."""
        for name, digest in self.pending.items():
            path = self.out_dir / name
            if is_regular(path) and sha256_bytes(read_regular(path)) == digest:
                self.recorded[name] = digest
        self.pending = {}
        self._save()

    def _save(self) -> None:
        payload: dict[str, object] = {"written_by": "planner", "files": dict(sorted(self.recorded.items()))}
        if self.pending:
            payload["pending"] = dict(sorted(self.pending.items()))
        atomic_write(self.manifest_path, (json.dumps(payload, indent=2) + "\n").encode(), 0o644)


def _digests(entries: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in entries.items()} if isinstance(entries, dict) else {}


def _chmod_regular(path: Path, mode: int) -> None:
    """chmod the file itself: through an O_NOFOLLOW fd, so a link's target never gets planner's mode."""
    fd = _open_regular(path, os.O_RDONLY)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _back_up(path: Path) -> Path:
    """Keep what is at `path` under a free .bak name before planner replaces it; return that name.

    A regular file is copied into a new file (O_EXCL | O_NOFOLLOW: never into an existing name or a link);
    anything else (a link, a FIFO) is renamed aside as it is, so its target is neither read nor written.
    """
    backup = _free_backup_name(path)
    if not is_regular(path):
        os.rename(path, backup)
        return backup
    data = read_regular(path)
    fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, stat.S_IMODE(os.lstat(path).st_mode))
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return backup
